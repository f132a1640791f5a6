// How a row of the message list reads: joined to the previous message or with its own header, and
// its times. Mixed into the component's methods (message_list.js), used by its template.

export const rowMethods = {
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
};
