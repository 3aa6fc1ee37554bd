// Live parts of the dashboard (no framework): the experiment page's results section refreshes
// itself when a new results run lands, and "Copy as JSON" copies the row.
const POLL_MS = 3000;

function watchResults() {
  const section = document.getElementById("results");
  if (!section) return;
  const name = encodeURIComponent(section.dataset.name);
  let busy = false;
  setInterval(async () => {
    const current = document.getElementById("results");
    if (busy || document.hidden || !current) return;
    busy = true;
    try {
      const since = encodeURIComponent(current.dataset.run || "");
      const answer = await fetch(`/ui/experiments/${name}/results?since=${since}`,
                                 {credentials: "same-origin", cache: "no-store"});
      if (answer.status === 200) {
        const holder = document.createElement("div");
        holder.innerHTML = await answer.text();
        const fresh = holder.querySelector("#results");
        if (fresh) current.replaceWith(fresh);
      }
    } catch (error) {
      // the server is restarting or unreachable: try again at the next tick
    } finally {
      busy = false;
    }
  }, POLL_MS);
}

function copyButtons() {
  for (const button of document.querySelectorAll("button[data-source]")) {
    button.addEventListener("click", async () => {
      const text = document.getElementById(button.dataset.source).textContent;
      const status = document.getElementById("copy-status");
      try {
        await navigator.clipboard.writeText(text);
        status.textContent = "Copied.";
      } catch (error) {
        status.textContent = "Copying is not allowed here; open “Row as JSON” and copy it.";
      }
    });
  }
}

watchResults();
copyButtons();
