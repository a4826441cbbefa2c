// Review tasks: "Reviewed, plan: ..." posted to the API; the task leaves the list once written.
import { call, showError } from "/static/js/api.js";

const status = document.getElementById("tasks-status");

for (const form of document.querySelectorAll("form.review-form")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const id = form.dataset.alertId;
    const plan = form.elements.plan.value.trim();
    const error = document.getElementById(`plan-${id}-error`);
    if (!plan) {
      showError(error, "write the plan: what you found and what happens next");
      form.elements.plan.focus();
      return;
    }
    form.querySelector("button").disabled = true;
    try {
      await call("POST", `/api/v1/review-tasks/${id}/review`, { plan });
      const task = form.closest("li");
      const who = task.querySelector("h2").textContent;
      task.remove();
      status.textContent = `Review saved for ${who}: "Reviewed, plan: ${plan}". The task is closed.`;
      if (!document.querySelector("#tasks li")) status.textContent += " No review tasks are waiting.";
    } catch (problem) {
      showError(error, problem.message);
      form.querySelector("button").disabled = false;
    }
  });
}
