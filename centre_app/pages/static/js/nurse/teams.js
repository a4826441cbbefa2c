// Team lead: assign people to teams and nurses, or take them off, through the caseload API.
import { call, showError } from "/static/js/api.js";

const status = document.getElementById("teams-status");
const form = document.getElementById("assign-form");

if (form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const person = form.elements.person.value;
    const [kind, target] = form.elements.to.value.split(":");
    const url = kind === "team" ? `/api/v1/teams/${target}/caseload/${person}`
      : `/api/v1/nurses/${encodeURIComponent(target)}/caseload/${person}`;
    try {
      const after = await call("PUT", url);
      status.textContent = `Assigned. Now cared for by: ${[...after.nurses, ...after.teams.map((t) => `team ${t}`)].join(", ")}.`;
      window.location.reload();
    } catch (problem) {
      showError(document.getElementById("assign-error"), problem.message);
    }
  });
}

for (const button of document.querySelectorAll("button[data-action]")) {
  button.addEventListener("click", async () => {
    const { action, teamId, nurse, personId } = button.dataset;
    const url = action === "unassign-team" ? `/api/v1/teams/${teamId}/caseload/${personId}`
      : `/api/v1/nurses/${encodeURIComponent(nurse)}/caseload/${personId}`;
    try {
      await call("DELETE", url);
      window.location.reload();
    } catch (problem) {
      status.textContent = `Not changed: ${problem.message}`;
    }
  });
}
