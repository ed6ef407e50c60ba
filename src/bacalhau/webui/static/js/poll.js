// Refreshing what a page shows while it is looked at: `refresh` runs now, then `interval` ms (a number, or a
// function that says) after each run ends
// (never two at once), and not at all while the tab is hidden (it runs again as soon as the tab is shown).

export function poll(refresh, interval) {
  let timer = null;
  let running = false;
  let stopped = false;
  let again = false; // asked for while a run was under way: run once more right after it

  async function tick() {
    timer = null;
    if (stopped || running || document.hidden) return;
    running = true;
    try {
      await refresh();
    } catch (error) {
      console.warn('refresh failed', error);
    } finally {
      running = false;
    }
    if (!stopped && !document.hidden) timer = setTimeout(tick, again ? 0 : typeof interval === 'function' ? interval() : interval);
    again = false;
  }

  function onVisibility() {
    if (!document.hidden && timer === null && !running) tick();
  }

  document.addEventListener('visibilitychange', onVisibility);
  tick();
  return {
    now() {
      if (running) {
        again = true;
        return;
      }
      if (timer !== null) clearTimeout(timer);
      tick();
    },
    stop() {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisibility);
    },
  };
}
