// Drives the official OpenFeature web SDK with its OFREP web provider against a running splitlab
// service; pytest (tests/integration/test_ofrep_clients.py) runs it and checks what it prints.
// Usage: node interop/ofrep-web.mjs BASE_URL API_KEY '{"targetingKeys": [...], "flags": [...]}'
import { OFREPWebProvider } from "@openfeature/ofrep-web-provider";
import { OpenFeature } from "@openfeature/web-sdk";

const [baseUrl, apiKey, spec] = process.argv.slice(2);
const { targetingKeys, flags } = JSON.parse(spec);
const requests = [];
const recordingFetch = async (input, init) => {
  const response = await fetch(input, init);
  requests.push({ url: String(input?.url ?? input), status: response.status,
    ifNoneMatch: new Headers(init?.headers ?? input?.headers).get("if-none-match") });
  return response;
};
const provider = new OFREPWebProvider({
  baseUrl, headers: [["Authorization", `Bearer ${apiKey}`]], fetchImplementation: recordingFetch,
  disableVisibilityRefresh: true,
});
const client = OpenFeature.getClient();
const results = {};
await OpenFeature.setContext({ targetingKey: targetingKeys[0] });
await OpenFeature.setProviderAndWait(provider);
for (const [index, targetingKey] of targetingKeys.entries()) {
  if (index > 0) await OpenFeature.setContext({ targetingKey });
  results[targetingKey] = Object.fromEntries(flags.map((flag) => {
    const details = client.getStringDetails(flag, "fallback");
    return [flag, { value: details.value, variant: details.variant ?? null,
      reason: details.reason, errorCode: details.errorCode ?? null,
      subject_id: details.flagMetadata?.subject_id ?? null }];
  }));
}
await OpenFeature.close();
console.log(JSON.stringify({ results, requests }));
