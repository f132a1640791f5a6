// A room socket client built on the official phoenix package, driven by the test suite line by line.
// Usage: node room_client.mjs WS_ENDPOINT TOKEN ROOM_ID [authToken|params]
// It prints one JSON object a line: {"joined": response}, {"event": name, "payload": ...}, {"reply": ...},
// {"presence": [{"key", "via": [...]}, ...]} (on every sync), {"socket": "open" | "close" | "error"}. It reads commands the same way on stdin:
// {"push": event, "payload": {...}} (answered by {"reply": {"event", "status", "response"}}), {"exit": true}.
import { createInterface } from "node:readline"
import { Presence, Socket } from "phoenix"
import WebSocket from "ws"

const [endpoint, token, roomId, how = "authToken"] = process.argv.slice(2)
const say = (line) => process.stdout.write(JSON.stringify(line) + "\n")

const options = { transport: WebSocket, heartbeatIntervalMs: 1000, reconnectAfterMs: () => 200, rejoinAfterMs: () => 200 }
if (how === "authToken") options.authToken = token
else options.params = { token }
const socket = new Socket(endpoint, options)
socket.onOpen(() => say({ socket: "open" }))
socket.onClose(() => say({ socket: "close" }))
socket.onError(() => say({ socket: "error" }))

// What this client has seen, so that a rejoin (after any reconnect) asks only for what it missed.
let lastMessageId = null
let since = null
const seen = (message) => { if (message && message.id > (lastMessageId ?? 0)) lastMessageId = message.id }
const channel = socket.channel(`room:${roomId}`, () => (lastMessageId === null ? {} : { last_message_id: lastMessageId, since }))
for (const event of ["message_posted", "message_updated", "message_deleted", "ai_reply_started", "ai_reply_delta",
  "ai_reply_ended", "ai_notice", "participants_changed", "room_changed", "room_deleted", "removed"]) {
  channel.on(event, (payload) => { seen(payload.message); say({ event, payload }) })
}
// Who is in the room, as phoenix.js's own Presence keeps it from presence_state and presence_diff.
const presence = new Presence(channel)
presence.onSync(() => say({ presence: presence.list((key, { metas }) => ({ key, via: metas.map((m) => m.via).sort() })) }))
channel.join()
  .receive("ok", (response) => {
    since = response.server_time
    for (const m of response.messages ?? []) seen(m)
    for (const m of response.missed?.new ?? []) seen(m)
    say({ joined: response })
  })
  .receive("error", (response) => say({ join_error: response }))
socket.connect()

createInterface({ input: process.stdin }).on("line", (line) => {
  const command = JSON.parse(line)
  if (command.exit) { socket.disconnect(() => process.exit(0)); return }
  channel.push(command.push, command.payload ?? {})
    .receive("ok", (response) => { seen(response.message); say({ reply: { event: command.push, status: "ok", response } }) })
    .receive("error", (response) => say({ reply: { event: command.push, status: "error", response } }))
    .receive("timeout", () => say({ reply: { event: command.push, status: "timeout" } }))
})
