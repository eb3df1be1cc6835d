// Composes subgraph SDLs into a supergraph with Apollo's own composition and prints
// {errors, hints, supergraphSdl} as JSON. Usage: node compose.mjs <name>=<file> ...
// where <file> is "-" for stdin. Exits 0 either way: the caller judges the errors.
import { readFileSync } from "node:fs";
import { composeServices } from "@apollo/composition";
import { parse } from "graphql";

const services = process.argv.slice(2).map((argument) => {
  const at = argument.indexOf("=");
  const [name, file] = [argument.slice(0, at), argument.slice(at + 1)];
  return {
    name,
    url: `http://${name}.invalid/graphql`,
    typeDefs: parse(readFileSync(file === "-" ? 0 : file, "utf8")),
  };
});
const result = composeServices(services);
const described = (items) => (items ?? []).map((item) => ({
  code: item.extensions?.code ?? item.definition?.code ?? null,
  message: item.message,
}));
console.log(JSON.stringify({
  errors: described(result.errors),
  hints: described(result.hints),
  supergraphSdl: result.errors ? null : result.supergraphSdl,
}));
