// The message composer. The draft lives in the browser: nothing is sent while typing, the text
// travels with "send" only. Enter sends; Shift+Enter (and Enter while an input method composes)
// adds a line. A draft the server will accept is cleared at once; errors come back through
// showError/restore, which put the text back if it was cleared.
export default {
  template: `
    <div class="composer-row">
      <q-input ref="box" v-model="text" type="textarea" label="Message" :placeholder="placeholder"
               autogrow outlined dense stack-label class="composer-input" input-style="max-height: 30vh"
               :error="!!error" :error-message="error" @keydown="onKeydown" @update:model-value="error = ''" />
      <q-btn unelevated color="primary" icon="send" label="Send" class="composer-send" @click="send" />
    </div>`,
  props: {
    maxChars: { type: Number, required: true },
    placeholder: { type: String, default: "" },
  },
  data() {
    return { text: "", error: "" };
  },
  methods: {
    onKeydown(e) {
      if (e.key !== "Enter" || e.shiftKey || e.ctrlKey || e.altKey || e.metaKey) return;
      if (e.isComposing || e.keyCode === 229) return;
      e.preventDefault();
      this.send();
    },
    send() {
      const text = this.text;
      const size = [...text.trim()].length;
      if (size >= 1 && size <= this.maxChars) this.text = "";
      this.$emit("send", text);
    },
    showError(error, text) {
      if (!this.text) this.text = text;
      this.error = error;
    },
    restore(text, error) {
      this.text = this.text ? text + "\n" + this.text : text;
      this.error = error;
    },
    focus() {
      this.$refs.box.focus();
    },
  },
};
