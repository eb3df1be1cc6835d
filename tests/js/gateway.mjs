// An Apollo Gateway in front of a running crmgraph subgraph, as partners reach it:
// composed at start-up from the subgraphs' `_service { sdl }` (asked with no
// credentials), forwarding each request's Authorization (and X-Api-Key) to them.
// Usage: node gateway.mjs '<json config>' where the config is
//   {"crm": "<crmgraph /graphql url>",
//    "reviews": {"typeDefs": "<SDL>", "data": [{"id", "stars", "accountId"}]} or null,
//    "requests": [{"token": "<bearer token>", "query": "...", "variables": {...}}]}
// "reviews" starts a second, tiny subgraph here that extends Account by its key.
// Prints one JSON line per request: the gateway's response body.
import { ApolloGateway, IntrospectAndCompose, RemoteGraphQLDataSource } from "@apollo/gateway";
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";
import { buildSubgraphSchema } from "@apollo/subgraph";
import { parse } from "graphql";

const config = JSON.parse(process.argv[2]);
const running = [];
// stdout is for the answers alone.
const logger = {
  debug() {}, info: (m) => console.error(m), warn: (m) => console.error(m),
  error: (m) => console.error(m),
};

async function start(server, context) {
  const { url } = await startStandaloneServer(server, { listen: { port: 0 }, context });
  running.push(server);
  return url;
}

const subgraphs = [{ name: "crm", url: config.crm }];
if (config.reviews) {
  const { typeDefs, data } = config.reviews;
  const resolvers = {
    Query: { reviews: () => data },
    Review: { account: (review) => ({ __typename: "Account", id: review.accountId }) },
    Account: {
      __resolveReference: (reference) => ({ id: reference.id }),
      reviews: (account) => data.filter((review) => review.accountId === account.id),
    },
  };
  const schema = buildSubgraphSchema({ typeDefs: parse(typeDefs), resolvers });
  const reviews = new ApolloServer({ schema, logger });
  subgraphs.push({ name: "reviews", url: await start(reviews) });
}

const gateway = new ApolloGateway({
  logger,
  supergraphSdl: new IntrospectAndCompose({ subgraphs }),
  buildService: ({ url }) => new RemoteGraphQLDataSource({
    url,
    willSendRequest({ request, context }) {
      if (context.authorization) request.http.headers.set("authorization", context.authorization);
      if (context.apiKey) request.http.headers.set("x-api-key", context.apiKey);
    },
  }),
});
const url = await start(new ApolloServer({ gateway, logger }), async ({ req }) => ({
  authorization: req.headers.authorization,
  apiKey: req.headers["x-api-key"],
}));

try {
  for (const { token, query, variables } of config.requests) {
    const headers = { "content-type": "application/json" };
    if (token) headers.authorization = `Bearer ${token}`;
    const response = await fetch(url, {
      method: "POST", headers, body: JSON.stringify({ query, variables }),
    });
    console.log(JSON.stringify(await response.json()));
  }
} finally {
  for (const server of running.reverse()) await server.stop();
}
process.exit(0);
