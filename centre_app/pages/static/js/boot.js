// Every page: NHS.UK frontend's components (header menu, error summary, tables...).
import { initAll } from "/static/vendor/nhsuk-frontend/nhsuk-frontend.min.js";

document.body.classList.add("js-enabled", "nhsuk-frontend-supported");
initAll();
