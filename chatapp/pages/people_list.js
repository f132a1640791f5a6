// The room's participants as data: one element however many people; names are text, never HTML.
export default {
  template: `
    <section class="people" aria-labelledby="people-heading">
      <h2 id="people-heading" class="people-heading">People ({{ people.length }})</h2>
      <ul class="people-list" aria-label="Participants">
        <li v-for="p in people" :key="p.id" class="people-item">
          <q-icon :name="p.kind === 'ai' ? 'smart_toy' : 'person'" size="sm" class="people-icon" />
          <span class="people-text">
            <span class="people-name">{{ p.name }}</span>
            <span class="people-role">{{ p.role }}</span>
          </span>
        </li>
      </ul>
    </section>`,
  props: {
    people: { type: Array, default: () => [] },
  },
};
