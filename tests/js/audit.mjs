// Runs graphql-http's GraphQL-over-HTTP conformance audit, unchanged, against a server
// and prints every result as one JSON line: { id, name, status, reason }.
// Usage: node audit.mjs <http url of /graphql> [Header-Name:value ...]
// Headers given after the URL are added to every audit request (e.g. a CSRF preflight
// header, to see what GET requests do once they carry one); none by default.
import { serverAudits } from "graphql-http";

const [url, ...headerArgs] = process.argv.slice(2);
if (!url) {
  console.error("usage: node audit.mjs <url> [Header-Name:value ...]");
  process.exit(2);
}
const extra = headerArgs.map((arg) => {
  const at = arg.indexOf(":");
  return [arg.slice(0, at).trim(), arg.slice(at + 1).trim()];
});

const fetchFn = extra.length === 0 ? fetch : (input, init = {}) => {
  const headers = new Headers(init.headers);
  for (const [name, value] of extra) headers.set(name, value);
  return fetch(input, { ...init, headers });
};

for (const audit of serverAudits({ url, fetchFn })) {
  const result = await audit.fn();
  const line = { id: result.id, name: result.name, status: result.status };
  if (result.status !== "ok") {
    line.reason = result.reason;
    line.httpStatus = result.response?.status;
    // The body says why the server answered as it did; read it so the socket is freed.
    line.body = result.response && !result.response.bodyUsed
      ? (await result.response.text().catch(() => "")).slice(0, 300)
      : undefined;
  }
  console.log(JSON.stringify(line));
}
