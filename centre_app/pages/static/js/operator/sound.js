// The new-alarm tone, made with the Web Audio API (no sound file): two short beeps for a
// priority 1 alarm, one for a priority 2. Browsers start audio only after the page has had a
// click or a key, so the context is resumed on the operator's first one.

let context = null;

function audio() {
  if (!context) context = new AudioContext();
  if (context.state === "suspended") context.resume().catch(() => {});
  return context;
}

export function unlockOnFirstGesture() {
  const unlock = () => audio();
  document.addEventListener("pointerdown", unlock, { once: true });
  document.addEventListener("keydown", unlock, { once: true });
}

function beep(ctx, start, frequency) {
  const oscillator = ctx.createOscillator();
  const gain = ctx.createGain();
  oscillator.type = "square";
  oscillator.frequency.value = frequency;
  gain.gain.setValueAtTime(0.0001, start);
  gain.gain.exponentialRampToValueAtTime(0.25, start + 0.02);
  gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.35);
  oscillator.connect(gain).connect(ctx.destination);
  oscillator.start(start);
  oscillator.stop(start + 0.4);
}

// Plays the tone for `priority`; returns false if this browser has no Web Audio.
export function tone(priority) {
  if (typeof AudioContext === "undefined") return false;
  const ctx = audio();
  const now = ctx.currentTime;
  beep(ctx, now, 880);
  if (priority === 1) beep(ctx, now + 0.5, 880);
  return true;
}
