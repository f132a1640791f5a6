// The room's message list: one element holding messages as data.
// New messages arrive through one room-wide socket.io event (events.messages, emitted once for all
// viewers, a batch when the room is busy); whatever was missed while the socket was down is asked for on every (re)connect
// ("catch-up"); older pages come through prepend(). Nothing re-renders the history.
function newerEdit(a, b) {
  // Whether copy a of a message was edited after copy b (ISO times; equal to the millisecond: by text).
  if (!a.edited || a.edited === b.edited) return false;
  if (!b.edited) return true;
  const ta = Date.parse(a.edited), tb = Date.parse(b.edited);
  return ta > tb || (ta === tb && a.edited > b.edited) || Number.isNaN(tb);
}

// A quiet room's page says what it took in at most this often: each "received" is an event the server
// handles, and 500 tabs saying it every second cost the room's broadcasts a third of their speed.
const ACK_AFTER_MS = 5000;

export default {
  template: `
    <div class="chat-log-wrap">
      <div class="chat-log" role="log" aria-live="polite" aria-label="Messages" ref="log" tabindex="0"
           @scroll.passive="onScroll" @wheel.passive="userScrolls" @touchmove.passive="userScrolls"
           @keydown="userScrolls" @pointerdown="userScrolls">
       <div ref="content">
        <div class="chat-older">
          <button v-if="older" type="button" class="chat-older-btn" :disabled="loading" @click="loadOlder">
            {{ loading ? 'Loading…' : 'Load older messages' }}
          </button>
          <div v-else-if="items.length" class="chat-start">This is the start of the conversation.</div>
        </div>
        <p v-if="!items.length" class="chat-empty">No messages yet. Say hello!</p>
        <article v-for="(m, i) in items" :key="m.id" class="chat-msg"
                 :class="['chat-kind-' + m.kind, { 'chat-cont': continues(i) }]" :data-id="m.id">
          <header class="chat-msg-head" :class="{ 'sr-only': continues(i) }">
            <span class="chat-author">{{ m.author }}</span>
            <span v-if="m.kind === 'ai'" class="chat-badge" title="Written by the AI, not a person">AI</span>
            <span v-else-if="m.kind === 'guest'" class="chat-badge chat-badge-guest"
                  title="A guest: joined by an invite link, without an account">guest</span>
            <time class="chat-time" :datetime="m.ts" :title="fullTime(m.ts)">{{ shortTime(m.ts) }}</time>
            <template v-if="!(ai && ai.replaces === m.id)">
              <span v-if="m.status && m.status !== 'complete'" class="chat-status">{{ m.status }}</span>
              <span v-if="m.edited" class="chat-status" :title="'Regenerated ' + fullTime(m.edited)">regenerated</span>
            </template>
          </header>
          <template v-if="ai && ai.replaces === m.id">
            <div class="chat-body chat-stream chat-streaming" aria-busy="true">{{ ai.text || aiName + " is typing…" }}</div>
            <button v-if="canAct" type="button" class="chat-stop-btn" @click="$emit('stop-ai')">Stop</button>
          </template>
          <div v-else class="chat-body" v-html="m.html"></div>
          <div class="chat-actions">
            <button v-if="canAct && !ai && m.id === latestAiId" type="button" class="chat-regen-btn"
                    @click="$emit('regenerate-ai')">Regenerate</button>
            <button v-if="mayDelete(m)" type="button" class="chat-delete-btn"
                    :aria-label="confirming === m.id ? 'Confirm: delete this message' : 'Delete message'"
                    @click="askDelete(m)">{{ confirming === m.id ? "Delete? Click again" : "Delete" }}</button>
          </div>
        </article>
        <article v-if="ai && !ai.replaces" class="chat-msg chat-kind-ai chat-streaming" aria-busy="true">
          <header class="chat-msg-head">
            <span class="chat-author">{{ aiName }}</span>
            <span class="chat-badge" title="Written by the AI, not a person">AI</span>
          </header>
          <div class="chat-body chat-stream">{{ ai.text || aiName + " is typing…" }}</div>
          <button v-if="canAct" type="button" class="chat-stop-btn" @click="$emit('stop-ai')">Stop</button>
        </article>
        <p v-if="notice" class="chat-notice" role="status">{{ notice }}</p>
       </div>
      </div>
      <button v-if="unseen" type="button" class="chat-jump" @click="toBottom(true)">New messages below</button>
    </div>`,
  props: {
    messages: { type: Array, default: () => [] },
    hasOlder: { type: Boolean, default: false },
    windowSize: { type: Number, default: 300 },
    room: { type: Number, required: true },
    aiName: { type: String, default: "Assistant" },
    aiRunning: { type: Object, default: null },
    canAct: { type: Boolean, default: false },
    me: { type: Number, default: 0 },  // the viewer's participant id (0: not in the room)
    canModerate: { type: Boolean, default: false },
    syncedAt: { type: Number, default: 0 },  // server time (ms) up to which the page has every change
    ackEvery: { type: Number, default: 50 },
    events: { type: Object, required: true },  // the live events' names (chatapp/live/wire.py)  // say which broadcasts arrived after this many (room_feed.py)
  },
  data() {
    const running = this.aiRunning;
    const ai = running ? { reply: running.reply_id, text: running.text, replaces: running.replaces || null } : null;
    return { items: [...this.messages], older: this.hasOlder, loading: false, atBottom: true, unseen: false,
             ai, notice: "", confirming: null, moderator: null, seenUntil: this.syncedAt,
             aiEvents: 0, aiEventsAtConnect: 0 };
  },
  computed: {
    latestAiId() {
      for (let i = this.items.length - 1; i >= 0; i--) if (this.items[i].kind === "ai") return this.items[i].id;
      return null;
    },
  },
  created() {
    this.deleted = new Set();  // ids deleted while this page is open: never shown again
    this.liveSinceConnect = new Set();  // ids that came live since the socket last connected
    this.seq = 0;  // the number of the room's latest broadcast taken in...
    this.ackedSeq = 0;  // ...and the one the server was last told of
  },
  mounted() {
    this.toBottom(false);
    // Stay at the bottom while the content grows for reasons other than new messages (web fonts
    // arriving, code blocks laid out): only the reader's own scrolling unsticks the list.
    this.resizes = new ResizeObserver(() => { if (this.atBottom) this.toBottom(false); });
    this.resizes.observe(this.$refs.content);
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
  unmounted() {
    clearTimeout(this.attachTimer);
    clearTimeout(this.ackTimer);
    clearTimeout(this.noticeTimer);
    if (this.resizes) this.resizes.disconnect();
    if (window.socket) {
      window.socket.off(this.events.messages, this.onLive);
      window.socket.off(this.events.ai, this.onAi);
      window.socket.off(this.events.deleted, this.onDeleted);
      window.socket.off("connect", this.onConnect);
    }
  },
  methods: {
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
    catchUpFrom() {
      // Not the newest id: live messages can arrive out of id order (a code block renders slower than
      // a line of text), so ask again for the last few as well; duplicates are dropped by id.
      const overlap = 20;
      return this.items.length > overlap ? this.items[this.items.length - 1 - overlap].id : 0;
    },
    aiEvent(data) {
      // The AI's reply, live: typing, then growing text, then the saved message takes its place.
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
    setCanModerate(value) {
      this.moderator = value;
    },
    mayDelete(m) {
      const moderator = this.moderator === null ? this.canModerate : this.moderator;
      return this.me > 0 && (m.pid === this.me || moderator) && !(this.ai && this.ai.replaces === m.id);
    },
    askDelete(m) {
      // Two clicks: the first arms the button for a few seconds, the second deletes.
      if (this.confirming === m.id) {
        this.confirming = null;
        this.$emit("delete-message", m.id);
        return;
      }
      this.confirming = m.id;
      clearTimeout(this.confirmTimer);
      this.confirmTimer = setTimeout(() => { this.confirming = null; }, 4000);
    },
    forget(ids) {
      // Deleted messages leave the list and are never shown again (a late copy is ignored).
      for (const id of ids) this.deleted.add(id);
      if (ids.length) this.items = this.items.filter((m) => !this.deleted.has(m.id));
    },
    appendMany(messages) {
      for (const m of messages) this.append(m);
    },
    catchUp(messages, deletedIds, syncedAt) {
      // What was missed while the socket was down: deletions, then new and edited messages.
      this.forget(deletedIds);
      this.appendMany(messages);
      this.noteTime(syncedAt);
    },
    noteTime(serverMs) {
      // The server time of the latest news received: a reconnect asks for the changes made since.
      if (serverMs > this.seenUntil) this.seenUntil = serverMs;
    },
    syncAi(running) {
      // After a reconnect: the reply this tab showed may have ended (or another begun) meanwhile.
      if (this.aiEvents !== this.aiEventsAtConnect) return;  // the live events since are newer
      if (!running) {
        this.ai = null;
      } else if (!this.ai || this.ai.reply !== running.reply_id) {
        this.ai = { reply: running.reply_id, text: running.text, replaces: running.replaces || null };
      } else {
        this.ai.text = running.text;  // the same reply: the text that came while the socket was down
      }
    },
    reset(messages, hasOlder, syncedAt) {
      // The newest page, as read when the answer was made; what came live since then stays.
      const newest = messages.length ? messages[messages.length - 1].id : Infinity;
      const live = new Map(this.items.map((m) => [m.id, m]));
      const page = messages.filter((m) => !this.deleted.has(m.id))
        .map((m) => (live.has(m.id) && newerEdit(live.get(m.id), m) ? live.get(m.id) : m));
      const after = this.items.filter((m) => m.id > newest && this.liveSinceConnect.has(m.id));
      this.items = [...page, ...after];
      this.noteTime(syncedAt);
      this.older = hasOlder;
      this.loading = false;
      this.$nextTick(() => this.toBottom(false));
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
    append(message) {
      this.noteTime(Math.max(Date.parse(message.ts) || 0, message.edited ? Date.parse(message.edited) || 0 : 0));
      if (message.pid === this.me && this.me > 0) this.atBottom = true;  // your own message: always shown
      if (this.deleted.has(message.id)) return;
      const known = this.items.findIndex((m) => m.id === message.id);
      if (known >= 0) {  // a message seen before: replaced when it was edited since (a regenerated reply)
        if (newerEdit(message, this.items[known])) this.items.splice(known, 1, message);
        return;
      }
      // Older than the oldest loaded message while older ones are not loaded yet (an edit of an old
      // reply): it comes with its page, not above a gap in the list.
      if (this.older && this.items.length && message.id < this.items[0].id) return;
      const stick = this.atBottom;
      let i = this.items.length;
      while (i > 0 && this.items[i - 1].id > message.id) i--;
      this.items.splice(i, 0, message);
      if (stick && this.items.length > this.windowSize) {
        this.items.splice(0, this.items.length - this.windowSize);
        this.older = true;
      }
      if (stick) this.$nextTick(() => this.toBottom(false));
      else this.unseen = true;
    },
    prepend(messages, hasOlder) {
      const log = this.$refs.log;
      const fromBottom = log.scrollHeight - log.scrollTop;
      const known = new Set(this.items.map((m) => m.id));
      this.items.unshift(...messages.filter((m) => !known.has(m.id)));
      this.older = hasOlder;
      this.loading = false;
      this.$nextTick(() => { log.scrollTop = log.scrollHeight - fromBottom; });
    },
    loadFailed() {
      this.loading = false;
    },
    loadOlder() {
      if (this.loading || !this.items.length) return;
      this.loading = true;
      this.$emit("load-older", this.items[0].id);
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
    continues(i) {
      // A message by the same author within 5 minutes joins the previous one visually. The same
      // participant, not the same name: two people may share a name, and each keeps their header.
      if (i === 0) return false;
      const prev = this.items[i - 1], cur = this.items[i];
      if (cur.status && cur.status !== "complete") return false;
      return prev.pid === cur.pid && prev.author === cur.author && prev.kind === cur.kind
        && new Date(cur.ts) - new Date(prev.ts) < 300000;
    },
    shortTime(ts) {
      const d = new Date(ts);
      const today = new Date().toDateString() === d.toDateString();
      return today
        ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
        : d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
    },
    fullTime(ts) {
      return new Date(ts).toLocaleString();
    },
  },
};
