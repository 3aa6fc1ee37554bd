// The page's own module (external, as a strict CSP requires). The server already put the body
// classes in the first HTML; here the browser SDK verifies the signed payload and the page keeps
// only the classes it confirms (a payload that does not verify means the default experience),
// then sends the exposure. It leaves a note on <html> for tests.
import { createClient } from "/splitlab-sdk/index.js";

const PREFIX = "xlab-experiment-";
const body = document.body;
const name = body.dataset.splitlabExperiment;
const client = await createClient({ intakeUrl: body.dataset.splitlabIntake });
const experiment = client.getExperiment(name);
const group = experiment.getAssignedGroup();

for (const token of [...body.classList]) {
  if (token.startsWith(PREFIX)) body.classList.remove(token);
}
if (group !== null) body.classList.add(`${PREFIX}${name}`, `${PREFIX}${name}-${group}`);
const sent = experiment.sendExposure();
document.documentElement.dataset.splitlab = JSON.stringify({ group, sent, error: client.error });
