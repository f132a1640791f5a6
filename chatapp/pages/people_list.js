// The room's participants as data: one element however many people; names are text, never HTML.
// Owners see a role menu for people with accounts; owners and moderators a Remove button (two clicks)
// and, when they ask, the people removed from the room with a Let back in button.
export default {
  template: `
    <section class="people" aria-labelledby="people-heading">
      <h2 id="people-heading" class="people-heading">People ({{ people.length }})</h2>
      <ul class="people-list" aria-label="Participants">
        <li v-for="p in people" :key="p.id" class="people-item">
          <q-icon :name="kindIcons[p.kind] || 'person'" size="sm" class="people-icon" />
          <span class="people-text">
            <span class="people-name">{{ p.name }}<span v-if="p.id === me" class="people-you"> (you)</span></span>
            <span class="people-role">{{ p.role }}</span>
            <span v-if="mayChangeRole(p) || mayMakeMember(p) || mayRemove(p)" class="people-actions">
              <select v-if="mayChangeRole(p)" class="people-role-select" :aria-label="'Role of ' + p.name"
                      :value="p.role_value" @change="$emit('set-role', { id: p.id, role: $event.target.value })">
                <option value="owner">Owner</option>
                <option value="moderator">Moderator</option>
                <option value="member">Member</option>
                <option v-if="p.role_value === 'guest'" value="guest" disabled>Guest</option>
              </select>
              <button v-if="mayMakeMember(p)" type="button" class="people-make-member"
                      :aria-label="'Make ' + p.name + ' a member'"
                      @click="$emit('set-role', { id: p.id, role: 'member' })">Make member</button>
              <button v-if="mayRemove(p)" type="button" class="people-remove"
                      :aria-label="(confirming === p.id ? 'Confirm: remove ' : 'Remove ') + p.name"
                      @click="askRemove(p)">{{ confirming === p.id ? "Confirm" : "Remove" }}</button>
            </span>
          </span>
        </li>
      </ul>
      <div v-if="moderates" class="people-removed">
        <button v-if="removed === null" type="button" class="people-show-removed" @click="$emit('show-removed')">
          Show removed people
        </button>
        <template v-else>
          <h3 class="people-heading">Removed ({{ removed.length }})</h3>
          <p v-if="!removed.length" class="people-none">Nobody has been removed.</p>
          <ul v-else class="people-list" aria-label="Removed people">
            <li v-for="p in removed" :key="p.id" class="people-item">
              <q-icon name="person_off" size="sm" class="people-icon" />
              <span class="people-text">
                <span class="people-name">{{ p.name }}</span>
                <span class="people-actions">
                  <button v-if="mayReadmit(p)" type="button" class="people-readmit" :aria-label="'Let ' + p.name + ' back in'"
                          :disabled="readmitting.includes(p.id)" @click="readmit(p)">Let back in</button>
                </span>
              </span>
            </li>
          </ul>
        </template>
      </div>
    </section>`,
  props: {
    people: { type: Array, default: () => [] },
    me: { type: Number, default: 0 },
    myRole: { type: String, default: "" },
    removed: { type: Array, default: null },  // the removed people, once an owner or moderator asked
  },
  watch: {
    removed() {
      this.readmitting = [];
    },
  },
  computed: {
    moderates() {
      return ["owner", "moderator"].includes(this.myRole);
    },
  },
  data() {
    return { confirming: null, readmitting: [], kindIcons: { ai: "smart_toy", bot: "precision_manufacturing", webhook: "webhook" } };
  },
  methods: {
    mayChangeRole(p) {
      return this.myRole === "owner" && p.kind === "user" && p.id !== this.me;
    },
    mayMakeMember(p) {
      // A guest who has since created an account: a moderator may let them in as a member.
      return this.myRole === "moderator" && p.kind === "user" && p.role_value === "guest";
    },
    mayRemove(p) {
      if (p.kind === "ai" || p.id === this.me) return false;
      if (this.myRole === "owner") return true;
      return this.myRole === "moderator" && !["owner", "moderator"].includes(p.role_value);
    },
    readmit(p) {
      // One click is enough (nothing is lost by it); the button waits for the new list.
      this.readmitting.push(p.id);
      this.$emit("readmit", p.id);
    },
    mayReadmit(p) {
      return this.myRole === "owner" || !["owner", "moderator"].includes(p.role_value);
    },
    askRemove(p) {
      if (this.confirming === p.id) {
        this.confirming = null;
        this.$emit("remove", p.id);
        return;
      }
      this.confirming = p.id;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => { this.confirming = null; }, 4000);
    },
  },
};
