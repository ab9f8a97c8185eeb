// GitHub's own REST client, @octokit/rest, pointed at cargobay's /api/v3: nothing but `baseUrl`
// differs from talking to api.github.com. Driven by tests/e2e/test_rest_clients.py.
//
// Environment: OCTOKIT_BASE_URL (e.g. http://127.0.0.1:5000/api/v3) and OCTOKIT_TOKEN (a PAT;
// octokit sends it as `Authorization: token <PAT>`).
//
// Reads one JSON request per line on stdin and answers each with one JSON line on stdout:
//   {"call": "packages.getPackageForOrganization", "params": {...}}  an octokit.rest method
//   {"paginate": "packages.getAllPackageVersionsForPackageOwnedByOrg", "params": {...}}
//       octokit.paginate.iterator over that method: "pages" holds each page's data
//   {"request": "POST /admin/organizations", "params": {...}}  octokit.request(route, params)
// Answer: {"status": 200, "data": ..., "link": "<...>; rel=\"next\"" | null}
//      or, when octokit throws: {"status": 404, "error": "message", "data": {...}}.

import { createInterface } from "node:readline";
import { Octokit } from "@octokit/rest";

const octokit = new Octokit({
  baseUrl: process.env.OCTOKIT_BASE_URL,
  auth: process.env.OCTOKIT_TOKEN,
  userAgent: "cargobay-e2e",
  log: { debug() {}, info() {}, warn: console.error, error: console.error },
});

function method(path) {
  const [namespace, name] = path.split(".");
  const found = octokit.rest[namespace]?.[name];
  if (typeof found !== "function") throw new Error(`octokit.rest has no method ${path}`);
  return found;
}

async function handle(request) {
  try {
    if (request.paginate) {
      const pages = [];
      for await (const page of octokit.paginate.iterator(method(request.paginate), request.params)) {
        pages.push(page.data);
      }
      return { status: 200, pages };
    }
    const response = request.request
      ? await octokit.request(request.request, request.params ?? {})
      : await method(request.call)(request.params ?? {});
    return { status: response.status, data: response.data ?? null, link: response.headers.link ?? null };
  } catch (error) {
    if (typeof error.status !== "number") return { status: 0, error: String(error?.stack ?? error) };
    return { status: error.status, error: error.message, data: error.response?.data ?? null };
  }
}

for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim()) process.stdout.write(`${JSON.stringify(await handle(JSON.parse(line)))}\n`);
}
