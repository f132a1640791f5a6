// Keeping the message list at its bottom: it sticks there until the reader scrolls away, and says
// when new messages arrive below. Mixed into the component's methods (message_list.js).

export const scrollMethods = {
  startSticking() {
    this.toBottom(false);
    // Stay at the bottom while the content grows for reasons other than new messages (web fonts
    // arriving, code blocks laid out): only the reader's own scrolling unsticks the list.
    this.resizes = new ResizeObserver(() => { if (this.atBottom) this.toBottom(false); });
    this.resizes.observe(this.$refs.content);
  },
  stopSticking() {
    if (this.resizes) this.resizes.disconnect();
  },
  userScrolls() {
    this.userScrolledAt = Date.now();
  },
  onScroll() {
    const log = this.$refs.log;
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 48;
    // Layout shifts scroll too; only a scroll the reader made (recently touched, wheeled, keyed)
    // may take the list off the bottom. Reaching the bottom always sticks it again.
    if (atBottom || Date.now() - (this.userScrolledAt || 0) < 1000) this.atBottom = atBottom;
    if (this.atBottom) this.unseen = false;
  },
  toBottom(smooth) {
    const log = this.$refs.log;
    if (!log) return;
    log.scrollTo({ top: log.scrollHeight, behavior: smooth ? "smooth" : "auto" });
    this.atBottom = true;
    this.unseen = false;
  },
};
