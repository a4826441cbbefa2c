// The centre's live stream (GET /api/v1/alerts/stream, server-sent events) read with fetch, so
// that its keepalive comments are seen: 20 s with no byte at all (the centre sends one at least
// every 15 s) counts as a lost connection, as does the stream ending or failing. Reconnects
// every second, for as long as the page is open.
//   onUp(): connected (refetch everything: notices may have been missed meanwhile);
//   onDown(): not connected;
//   onChange(alertIds): alerts changed (`data: {"alert_ids": [...]}`);
//   onStorage(state): `event: storage` (`{"storage_fault": bool, "since"?, "title"?}`).

const SILENCE_MS = 20_000;
const RETRY_MS = 1_000;

function parse(frame, handlers) {
  let event = "message";
  const data = [];
  for (const line of frame.split("\n")) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trim());
  }
  if (!data.length) return;
  const body = JSON.parse(data.join("\n"));
  if (event === "storage") handlers.onStorage(body);
  else if (event === "message") handlers.onChange(body.alert_ids || []);
}

export function follow(handlers) {
  (async () => {
    for (;;) {
      const controller = new AbortController();
      let watchdog = null;
      const arm = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => controller.abort(), SILENCE_MS);
      };
      try {
        const response = await fetch("/api/v1/alerts/stream", {
          signal: controller.signal, headers: { Accept: "text/event-stream" }, credentials: "same-origin",
        });
        if (response.status === 401) {
          window.location.assign(`/signin?next=${encodeURIComponent(window.location.pathname)}`);
          return;
        }
        if (!response.ok || !response.body) throw new Error(`stream: ${response.status}`);
        arm();
        handlers.onUp();
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          arm();
          buffer += value;
          const frames = buffer.split("\n\n");
          buffer = frames.pop();
          for (const frame of frames) parse(frame, handlers);
        }
      } catch (error) {
        if (error.name !== "AbortError") console.warn(error);
      }
      clearTimeout(watchdog);
      handlers.onDown();
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  })();
}
