// The swarmpy dashboard's only script: live updates and the page's two actions.
// Every element with data-fragment is fetched again (its server-rendered HTML) after each
// batch of the cluster's events; forms with data-action POST their fields as JSON.
"use strict";

(function () {
  // Set once per page load: the browser test checks it survives the live updates.
  window.swarmpyLoadedAt = Date.now();
  window.swarmpyRefreshes = 0;

  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : "";
  const live = document.getElementById("live");
  const message = document.getElementById("message");

  function say(text, isError) {
    message.textContent = text;
    message.className = isError ? "message error" : "message";
    message.hidden = !text;
  }

  function toLogin(response) {
    if (response.status === 401) {
      window.location.assign(document.querySelector("a.brand").getAttribute("href") + "login");
      return true;
    }
    return false;
  }

  // --- fragments: fetched again, at most one round at a time, never under the user's cursor
  let timer = null, busy = false, again = false, deferred = false;

  function editing(el) {
    const field = document.activeElement;
    return el.contains(field) && field.tagName === "INPUT" && field.value !== field.defaultValue;
  }

  async function refresh() {
    for (const el of document.querySelectorAll("[data-fragment]")) {
      if (editing(el)) {
        deferred = true;  // the user is typing a number: wait until they leave the field
        continue;
      }
      const response = await fetch(el.dataset.fragment, {credentials: "same-origin"});
      if (toLogin(response)) return;
      if (response.ok) {
        el.innerHTML = await response.text();
        window.swarmpyRefreshes += 1;
      }
    }
  }

  function schedule() {
    if (timer !== null) return;
    timer = setTimeout(async function () {
      timer = null;
      if (busy) { again = true; return; }
      busy = true;
      try {
        await refresh();
      } catch (e) {
        say("cannot reach the manager: " + e, true);
      } finally {
        busy = false;
        if (again) { again = false; schedule(); }
      }
    }, 250);
  }
  document.addEventListener("focusout", function () {
    if (deferred) { deferred = false; schedule(); }
  });

  // --- live updates: the cluster's event stream
  function connect() {
    const url = document.body.dataset.events;
    if (!url || !window.EventSource) return;
    const source = new EventSource(url);
    source.onopen = function () { live.textContent = "live"; live.className = "live on"; schedule(); };
    source.onmessage = schedule;
    source.onerror = function () {
      live.textContent = "reconnecting…";
      live.className = "live off";
      // The browser retries by itself unless the answer was an error (too many streams, logged out).
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, 5000);
    };
  }

  // --- actions
  document.addEventListener("submit", async function (event) {
    const form = event.target.closest("form[data-action]");
    if (!form) return;
    event.preventDefault();
    const body = {};
    for (const field of form.elements) {
      if (field.name) body[field.name] = field.type === "number" ? Number(field.value) : field.value;
    }
    let response;
    try {
      response = await fetch(form.dataset.action, {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
        body: JSON.stringify(body),
      });
    } catch (e) {
      say("cannot reach the manager: " + e, true);
      return;
    }
    if (toLogin(response)) return;
    const answer = await response.json().catch(function () { return {}; });
    if (!response.ok) { say(answer.error || response.statusText, true); return; }
    if (form.dataset.then) { window.location.assign(form.dataset.then); return; }
    say(form.dataset.done || "done", false);
    if (form.contains(document.activeElement)) document.activeElement.blur();  // done: show the answer
    schedule();
  });
  document.addEventListener("change", function (event) {
    if (event.target.matches("select[data-submit]")) event.target.form.requestSubmit();
  });

  // --- text loaded once (a service's logs: read over SSH, not on every event)
  async function load(el) {
    const response = await fetch(el.dataset.load, {credentials: "same-origin"});
    if (toLogin(response)) return;
    const text = await response.text();
    el.textContent = response.ok ? (text || "(no output)") : (JSON.parse(text || "{}").error || response.statusText);
  }
  document.addEventListener("click", function (event) {
    const button = event.target.closest("button[data-reload]");
    if (button) load(document.getElementById(button.dataset.reload));
  });
  document.querySelectorAll("[data-load]").forEach(load);

  connect();
})();
