// A family member who is a keyholder: accept or decline a request to go, as the link in the message does.
import { call } from "/static/js/api.js";

for (const button of document.querySelectorAll(".telecare-answer")) {
  button.addEventListener("click", async () => {
    const { id, answer } = button.dataset;
    const result = document.getElementById(`answer-${id}`);
    const card = button.closest("li");
    for (const other of card.querySelectorAll("button")) other.disabled = true;
    try {
      const done = await call("POST", `/api/v1/keyholder-requests/${id}/${answer}`);
      result.textContent = done.answer === "accepted"
        ? `Thank you: the centre knows you are going to ${done.person_name}.${done.access_details ? ` How to get in: ${done.access_details}` : ""}`
        : "Thank you: the centre will ask someone else.";
      card.querySelector(".telecare-actions").remove();
    } catch (problem) {
      result.textContent = problem.message;
    }
  });
}
