// Subscribes to the live attainment feed (no arguments: a rep's own and its team's)
// with the standard graphql-ws client, unchanged, and prints every message as one JSON
// line. It exits `settle` ms after the first message: the rows one change touched
// arrive one after the other, with the same eventId.
// Usage: node attainment.mjs <ws url> <token> <settle ms>
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, token, settle] = process.argv.slice(2);
const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${token}` },
  retryAttempts: 0,
  on: { connected: () => console.log(JSON.stringify({ connected: true })) },
});

await new Promise((resolve, reject) => {
  let first = true;
  client.subscribe(
    {
      query: `subscription {
        targetAttainmentChanged {
          eventId reason week metric activityType { code } target realized ratio
          user { id }
        }
      }`,
    },
    {
      next: (result) => {
        if (result.errors) return reject(new Error(JSON.stringify(result.errors)));
        console.log(JSON.stringify(result.data.targetAttainmentChanged));
        if (first) {
          first = false;
          setTimeout(resolve, Number(settle));
        }
      },
      error: (error) => reject(error instanceof Error ? error : new Error(JSON.stringify(error))),
      complete: resolve,
    },
  );
});
await client.dispose();
process.exit(0);
