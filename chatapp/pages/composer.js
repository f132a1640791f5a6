// The message composer and its outbox. The draft lives in the browser: nothing is sent while typing,
// the text travels with "send" only. Enter sends; Shift+Enter (and Enter while an input method
// composes) adds a line.
//
// Every message gets an id made here and stays in the outbox, shown under the conversation as
// "Sending…", until the server confirms it was saved. After a reconnect (or a reload: the outbox and
// the draft are kept in localStorage, per room and person) everything unconfirmed is sent again; the
// server answers a message it already has with that one, so nothing is saved twice. A message the
// server refuses comes back into the box with the reason.
const UNCONFIRMED_AFTER_MS = 8000; // no answer by then: shown as "not sent, retrying" and sent again
const MAX_RETRY_MS = 30000;

function newMessageId() {
  // crypto.randomUUID exists only on https and localhost pages; getRandomValues everywhere.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function readJson(key, fallback) {
  try {
    const raw = window.localStorage.getItem(key);
    return raw === null ? fallback : JSON.parse(raw);
  } catch (e) {
    return fallback; // storage disabled, or a value from elsewhere
  }
}

function writeJson(key, value) {
  try {
    if (value === null) window.localStorage.removeItem(key);
    else window.localStorage.setItem(key, JSON.stringify(value));
  } catch (e) {
    // storage full or disabled: the tab still works, only a reload forgets
  }
}

export default {
  template: `
    <div class="composer-box">
      <ul v-if="outbox.length" class="composer-outbox" aria-label="Messages not sent yet">
        <li v-for="item in outbox" :key="item.cid" class="outbox-item" :data-state="item.state">
          <span class="outbox-text">{{ item.text }}</span>
          <span class="outbox-state" role="status">{{ stateText(item) }}</span>
        </li>
      </ul>
      <div class="composer-row">
        <q-input ref="box" v-model="text" type="textarea" label="Message" :placeholder="placeholder"
                 autogrow outlined dense stack-label class="composer-input" input-style="max-height: 30vh"
                 :error="!!error" :error-message="error" @keydown="onKeydown" @update:model-value="error = ''" />
        <q-btn unelevated color="primary" icon="send" label="Send" class="composer-send" @click="send" />
      </div>
    </div>`,
  props: {
    maxChars: { type: Number, required: true },
    placeholder: { type: String, default: "" },
    storageKey: { type: String, default: "" },
  },
  data() {
    return { text: "", error: "", outbox: [] };
  },
  watch: {
    text(value) {
      if (this.storageKey) writeJson(this.storageKey + ":draft", value ? value : null);
    },
  },
  mounted() {
    this.timers = new Map(); // message id -> its resend timer
    if (this.storageKey) {
      this.text = readJson(this.storageKey + ":draft", "") || "";
      const kept = readJson(this.storageKey + ":outbox", []);
      if (Array.isArray(kept)) {
        this.outbox = kept
          .filter((m) => m && typeof m.cid === "string" && typeof m.text === "string")
          .map((m) => ({ cid: m.cid, text: m.text, state: "retrying", tries: 0 }));
      }
    }
    this.onConnect = () => this.outbox.forEach((item) => this.transmit(item));
    this.onDisconnect = () => this.outbox.forEach((item) => (item.state = "retrying"));
    this.attach();
  },
  unmounted() {
    clearTimeout(this.attachTimer);
    this.timers.forEach((timer) => clearTimeout(timer));
    if (window.socket) {
      window.socket.off("connect", this.onConnect);
      window.socket.off("disconnect", this.onDisconnect);
    }
  },
  methods: {
    attach() {
      // NiceGUI opens the socket after its components are mounted.
      if (!window.socket) {
        this.attachTimer = setTimeout(() => this.attach(), 10);
        return;
      }
      window.socket.on("connect", this.onConnect);
      window.socket.on("disconnect", this.onDisconnect);
      if (window.socket.connected) this.onConnect();
    },
    stateText(item) {
      if (item.state === "sending") return "Sending…";
      return item.note ? "Not sent, retrying: " + item.note : "Not sent, retrying";
    },
    onKeydown(e) {
      if (e.key !== "Enter" || e.shiftKey || e.ctrlKey || e.altKey || e.metaKey) return;
      if (e.isComposing || e.keyCode === 229) return;
      e.preventDefault();
      this.send();
    },
    send() {
      const text = this.text;
      const size = [...text.trim()].length;
      if (size < 1 || size > this.maxChars) {
        this.$emit("send", { cid: newMessageId(), text }); // the server says what is wrong with it
        return;
      }
      const item = { cid: newMessageId(), text, state: "sending", tries: 0 };
      this.outbox.push(item);
      this.keepOutbox();
      this.text = "";
      this.transmit(this.outbox[this.outbox.length - 1]);
    },
    transmit(item) {
      clearTimeout(this.timers.get(item.cid));
      if (!window.socket || !window.socket.connected) {
        item.state = "retrying"; // sent when the socket connects again
        return;
      }
      item.state = "sending";
      item.tries += 1;
      this.$emit("send", { cid: item.cid, text: item.text });
      const wait = Math.min(UNCONFIRMED_AFTER_MS * item.tries, MAX_RETRY_MS);
      this.timers.set(item.cid, setTimeout(() => this.retry(item.cid, ""), wait));
    },
    find(cid) {
      return this.outbox.find((item) => item.cid === cid);
    },
    keepOutbox() {
      if (!this.storageKey) return;
      const kept = this.outbox.map((m) => ({ cid: m.cid, text: m.text }));
      writeJson(this.storageKey + ":outbox", kept.length ? kept : null);
    },
    drop(cid) {
      clearTimeout(this.timers.get(cid));
      this.timers.delete(cid);
      this.outbox = this.outbox.filter((item) => item.cid !== cid);
      this.keepOutbox();
    },
    // Called by the server:
    confirm(cid) {
      this.drop(cid);
    },
    retry(cid, note, delaySeconds = 0) {
      const item = this.find(cid);
      if (!item) return;
      item.state = "retrying";
      item.note = note;
      clearTimeout(this.timers.get(cid));
      this.timers.set(cid, setTimeout(() => this.find(cid) && this.transmit(this.find(cid)), delaySeconds * 1000));
    },
    reject(cid, error, text) {
      // Refused for good (too long, no longer allowed...): the text goes back into the box, above
      // anything typed since, with the reason.
      const item = this.find(cid);
      this.drop(cid);
      const back = item ? item.text : text;
      if (back && this.text !== back) this.text = this.text ? back + "\n" + this.text : back;
      this.error = error;
    },
    showError(error, text) {
      if (!this.text) this.text = text;
      this.error = error;
    },
    focus() {
      this.$refs.box.focus();
    },
  },
};
