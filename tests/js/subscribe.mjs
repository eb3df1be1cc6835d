// Subscribes to the pipeline feed with the standard graphql-ws client, unchanged,
// prints every event as one JSON line, and exits after `count` events.
// Usage: node subscribe.mjs <ws url> <token> <after or ""> <count>
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, token, after, count] = process.argv.slice(2);
const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${token}` },
  retryAttempts: 0,
  on: { connected: () => console.log(JSON.stringify({ connected: true })) },
});

let received = 0;
await new Promise((resolve, reject) => {
  client.subscribe(
    {
      query: `subscription($after: String) {
        opportunityPhaseChanged(after: $after) { eventId kind toPhase { name } }
      }`,
      variables: { after: after || null },
    },
    {
      next: (result) => {
        if (result.errors) return reject(new Error(JSON.stringify(result.errors)));
        console.log(JSON.stringify(result.data.opportunityPhaseChanged));
        received += 1;
        if (received >= Number(count)) resolve();
      },
      error: (error) => reject(error instanceof Error ? error : new Error(JSON.stringify(error))),
      complete: resolve,
    },
  );
});
await client.dispose();
process.exit(0);
