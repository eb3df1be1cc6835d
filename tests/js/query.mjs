// Runs one query with graphql-ws over the socket and prints the result: queries work
// over graphql-transport-ws too. Usage: node query.mjs <ws url> <token> <query>
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, token, query] = process.argv.slice(2);
const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${token}` },
  retryAttempts: 0,
});
const result = await new Promise((resolve, reject) => {
  let value;
  client.subscribe({ query }, {
    next: (data) => { value = data; },
    error: (error) => reject(error instanceof Error ? error : new Error(JSON.stringify(error))),
    complete: () => resolve(value),
  });
});
console.log(JSON.stringify(result));
await client.dispose();
process.exit(0);
