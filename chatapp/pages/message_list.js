// The room's message list: one element holding messages as data.
// New messages arrive through one room-wide socket.io event (events.messages, emitted once for all
// viewers, a batch when the room is busy); whatever was missed while the socket was down is asked for on every (re)connect
// ("catch-up"); older pages come through prepend(). Nothing re-renders the history.
// The live feed, the AI's stream, scrolling and the rows' details are mixed in from their modules
// (bare names: NiceGUI serves them as libraries, in the page's import map; see message_list.py).
import { aiMethods, runningReply } from "message_ai";
import { liveMethods } from "message_live";
import { rowMethods } from "message_row";
import { scrollMethods } from "message_scroll";

function newerEdit(a, b) {
  // Whether copy a of a message was edited after copy b (ISO times; equal to the millisecond: by text).
  if (!a.edited || a.edited === b.edited) return false;
  if (!b.edited) return true;
  const ta = Date.parse(a.edited), tb = Date.parse(b.edited);
  return ta > tb || (ta === tb && a.edited > b.edited) || Number.isNaN(tb);
}

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
            <span v-else-if="m.kind === 'bot'" class="chat-badge chat-badge-bot"
                  title="A bot: an account a program acts for, through the API">bot</span>
            <span v-else-if="m.kind === 'webhook'" class="chat-badge chat-badge-bot"
                  title="Posted through the room's incoming webhook, by a script or service">webhook</span>
            <time class="chat-time" :datetime="m.ts" :title="fullTime(m.ts)">{{ shortTime(m.ts) }}</time>
            <template v-if="!(ai && ai.replaces === m.id)">
              <span v-if="m.status && m.status !== 'complete'" class="chat-status">{{ m.status }}</span>
              <span v-if="m.edited" class="chat-status"
                    :title="(m.kind === 'ai' ? 'Regenerated ' : 'Edited ') + fullTime(m.edited)">{{ m.kind === 'ai' ? 'regenerated' : 'edited' }}</span>
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
    ackEvery: { type: Number, default: 50 },  // say which broadcasts arrived after this many (room_feed.py)
    events: { type: Object, required: true },  // the live events' names (chatapp/live/wire.py)
  },
  data() {
    const ai = runningReply(this.aiRunning);
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
    this.startSticking();
    this.listen();
  },
  unmounted() {
    clearTimeout(this.noticeTimer);
    this.stopSticking();
    this.stopListening();
  },
  methods: {
    ...liveMethods,
    ...aiMethods,
    ...scrollMethods,
    ...rowMethods,
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
  },
};
