// The person's page: give or withdraw a family member's access, and tell the centre about time away.
import { call, localMidnight, showError } from "/static/js/api.js";

const root = document.getElementById("me");
const personId = root?.dataset.personId;
const status = document.getElementById("access-status");

for (const button of document.querySelectorAll(".telecare-withdraw")) {
  button.addEventListener("click", async () => {
    const username = button.dataset.username;
    try {
      await call("DELETE", `/api/v1/patients/${personId}/consent/${encodeURIComponent(username)}?why=${encodeURIComponent("withdrawn on my page")}`);
      status.textContent = "Done: they can no longer see your record.";
      button.closest("li").remove();
    } catch (problem) {
      status.textContent = `Not changed: ${problem.message}`;
    }
  });
}

document.getElementById("give-form")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  // A name typed in wins over a choice; the choices are the person's own keyholders with accounts.
  const typed = event.target.elements.username.value.trim();
  const chosen = event.target.querySelector("input[name='choice']:checked");
  const username = typed || (chosen ? chosen.value : "");
  const error = document.getElementById("give-error");
  if (!username) return showError(error, "choose who should see your record, or type the name they use to sign in");
  try {
    await call("POST", `/api/v1/patients/${personId}/consent`, { username, why: "given on my page" });
    window.location.reload();
  } catch (problem) {
    showError(error, problem.message);
  }
});

document.getElementById("absence-form")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const error = document.getElementById("absence-error");
  if (!form.elements.from.value || !form.elements.to.value) return showError(error, "enter your first and last day away");
  try {
    await call("POST", `/api/v1/patients/${personId}/absences`, {
      starts_at: localMidnight(form.elements.from.value), ends_at: localMidnight(form.elements.to.value, 1),
      reason: form.elements.reason.value.trim() });
    window.location.reload();
  } catch (problem) {
    showError(error, problem.message);
  }
});
