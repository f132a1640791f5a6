// The message list's live feed: the room's socket.io events, the catch-up asked for on every
// (re)connect, and saying to the server which of the room's broadcasts the page took in.
// Mixed into the component's methods (message_list.js): `this` is the component.

// A quiet room's page says what it took in at most this often: each "received" is an event the server
// handles, and 500 tabs saying it every second cost the room's broadcasts a third of their speed.
const ACK_AFTER_MS = 5000;

export const liveMethods = {
  listen() {
    this.onLive = (data) => {
      if (!data || data.room !== this.room) return;
      this.took(data.seq);
      for (const m of data.messages) this.liveSinceConnect.add(m.id);
      // The running reply's saved message takes the place of its stream at once (the "ended" event
      // travels another path and may come a moment later: both were on screen meanwhile).
      if (this.ai && !this.ai.replaces && data.messages.some((m) => m.kind === "ai")) this.ai = null;
      this.appendMany(data.messages);
    };
    // Live news and the answer to a catch-up take different paths and may cross: the answer is a
    // snapshot, so it never undoes what arrived live (a deletion, a newer edit, the AI's latest state).
    this.onConnect = () => {
      this.aiEventsAtConnect = this.aiEvents;
      this.liveSinceConnect = new Set();
      this.$emit("catch-up", { after: this.catchUpFrom(), since: this.seenUntil });
    };
    this.onAi = (data) => {
      if (!data || data.room !== this.room) return;
      this.took(data.seq);
      this.aiEvent(data);
    };
    this.onDeleted = (data) => {
      if (!data || data.room !== this.room) return;
      this.took(data.seq);
      this.forget([data.id]);
      this.noteTime(data.at);
    };
    this.attach();
  },
  attach() {
    // NiceGUI opens the socket after its components are mounted.
    if (!window.socket) {
      this.attachTimer = setTimeout(() => this.attach(), 10);
      return;
    }
    window.socket.on(this.events.messages, this.onLive);
    window.socket.on(this.events.ai, this.onAi);
    window.socket.on(this.events.deleted, this.onDeleted);
    window.socket.on("connect", this.onConnect);
    if (window.socket.connected) this.onConnect();
  },
  stopListening() {
    clearTimeout(this.attachTimer);
    clearTimeout(this.ackTimer);
    if (window.socket) {
      window.socket.off(this.events.messages, this.onLive);
      window.socket.off(this.events.ai, this.onAi);
      window.socket.off(this.events.deleted, this.onDeleted);
      window.socket.off("connect", this.onConnect);
    }
  },
  catchUpFrom() {
    // Not the newest id: live messages can arrive out of id order (a code block renders slower than
    // a line of text), so ask again for the last few as well; duplicates are dropped by id.
    const overlap = 20;
    return this.items.length > overlap ? this.items[this.items.length - 1 - overlap].id : 0;
  },
  took(seq) {
    // The server stops sending to a page that does not say what it took in (it would be a page that
    // cannot keep up): every ackEvery broadcasts, or ACK_AFTER_MS after the first one not yet said.
    if (!(seq > this.seq)) return;
    this.seq = seq;
    if (this.seq - this.ackedSeq >= this.ackEvery) this.ack();
    else if (!this.ackTimer) this.ackTimer = setTimeout(() => this.ack(), ACK_AFTER_MS);
  },
  ack() {
    clearTimeout(this.ackTimer);
    this.ackTimer = null;
    if (this.seq > this.ackedSeq) {
      this.ackedSeq = this.seq;
      this.$emit("received", this.seq);
    }
  },
  resync() {
    // the server left this tab out of the room's news while it was behind: ask for what it missed
    this.onConnect();
  },
  catchUpFailed() {
    // the server could not answer: ask again shortly (the composer and the list stay as they are)
    setTimeout(() => this.onConnect(), 2000);
  },
};
