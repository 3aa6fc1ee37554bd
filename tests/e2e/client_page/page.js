// The page's own script (an external module, as a strict CSP requires): apply the bootstrap,
// send the exposure, and leave a note for the test on <html>.
import { createClient } from "/sdk/index.js";

const client = await createClient();
const experiment = client.getExperiment("sticky-header-e2e");
const sent = experiment.sendExposure();
document.documentElement.dataset.splitlab = JSON.stringify({
  group: experiment.getAssignedGroup(), sent, error: client.error,
});
