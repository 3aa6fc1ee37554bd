// The experiment form's enhancements; the form works the same without them: only the chosen
// algorithm's fields are shown, and each traffic split row's total follows what is typed.
function showChosenAlgorithm(form) {
  const chosen = form.querySelector('input[name="algorithm"]:checked');
  for (const part of form.querySelectorAll("[data-algorithm]")) {
    part.hidden = chosen !== null && part.dataset.algorithm !== chosen.value;
  }
}

function updateTotal(row) {
  let thousandths = 0; // percents have at most 3 decimals: add integers, not floats
  for (const input of row.querySelectorAll("input[data-pct]")) {
    const value = Number(input.value.trim() || "0");
    if (Number.isFinite(value)) thousandths += Math.round(value * 1000);
  }
  const cell = row.querySelector("[data-total]");
  const over = thousandths > 100000;
  cell.querySelector("output").textContent = String(thousandths / 1000);
  cell.classList.toggle("over", over);
  cell.querySelector(".over-note").textContent = over ? "over 100" : "";
}

for (const form of document.querySelectorAll("form")) {
  if (!form.querySelector('input[name="algorithm"]')) continue;
  showChosenAlgorithm(form);
  form.addEventListener("change", (event) => {
    if (event.target.name === "algorithm") showChosenAlgorithm(form);
  });
  form.addEventListener("input", (event) => {
    const row = event.target.closest("tr[data-row]");
    if (row && event.target.matches("input[data-pct]")) updateTotal(row);
  });
}
