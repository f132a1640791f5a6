// The AI's reply in the message list, live: typing, then growing text, then the saved message takes
// its place; and the AI's notices. Mixed into the component's methods (message_list.js).

export function runningReply(running) {
  // The list's state of a reply in progress, from the server's view of it (null: none running).
  return running ? { reply: running.reply_id, text: running.text, replaces: running.replaces || null } : null;
}

export const aiMethods = {
  aiEvent(data) {
    this.aiEvents++;
    const stick = this.atBottom;
    if (data.type === "ai_reply_started") {
      this.ai = { reply: data.reply_id, text: "", replaces: data.replaces || null };
      this.notice = "";
    } else if (data.type === "ai_reply_delta") {
      // A delta belongs to the running reply (a tab opened mid-reply got its id and text with the page).
      if (!this.ai) this.ai = { reply: null, text: "", replaces: null };
      this.ai.text += data.text;
    } else if (data.type === "ai_reply_ended") {
      if (this.ai && (this.ai.reply === data.reply_id || this.ai.reply === null)) this.ai = null;
      if (data.notice) this.showNotice(data.notice);
    } else if (data.type === "ai_notice") {
      if (data.participant_id && data.participant_id !== this.me) return;  // meant for someone else
      this.showNotice(data.text);
    }
    if (stick) this.$nextTick(() => this.toBottom(false));
  },
  showNotice(text) {
    // A notice about the AI stays a while, then goes (the room moves on).
    this.notice = text;
    clearTimeout(this.noticeTimer);
    this.noticeTimer = setTimeout(() => { this.notice = ""; }, 15000);
  },
  syncAi(running) {
    // After a reconnect: the reply this tab showed may have ended (or another begun) meanwhile.
    if (this.aiEvents !== this.aiEventsAtConnect) return;  // the live events since are newer
    if (!running) {
      this.ai = null;
    } else if (!this.ai || this.ai.reply !== running.reply_id) {
      this.ai = runningReply(running);
    } else {
      this.ai.text = running.text;  // the same reply: the text that came while the socket was down
    }
  },
};
