"""The dashboards' only static files: one stylesheet and one small script, served from memory.

Kept as Python strings so they ship inside the package with no build step and
no package-data entry. The script submits a sign-in link's token and polls
the page's JSON endpoint to replace text and charts (progressive
enhancement: every page is complete without it). Colours meet WCAG AA contrast on their backgrounds.
"""

from __future__ import annotations

STYLE_CSS = """\
:root { color-scheme: light; --text: #1a1a1a; --muted: #4a4a4a; --line: #c8c8c8;
  --accent: #0b5cad; --band: #f3f5f8; --bad: #a4262c; --good: #1e6b34; }
* { box-sizing: border-box; }
html { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; font-size: 16px;
  line-height: 1.45; color: var(--text); background: #fff; }
body { margin: 0; }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible {
  outline: 3px solid #e69f00; outline-offset: 2px; }
.skip { position: absolute; left: -999px; top: 0; background: #fff; padding: .5rem; }
.skip:focus { left: .5rem; }
header { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1.5rem;
  padding: .6rem 1.5rem; background: #12263f; color: #fff; }
header a { color: #fff; text-decoration: none; padding: .25rem .4rem; border-radius: 3px; }
header a:hover { text-decoration: underline; }
header a[aria-current=page] { background: #fff; color: #12263f; font-weight: 600; }
.brand { margin: 0; font-weight: 700; }
nav ul { list-style: none; display: flex; flex-wrap: wrap; gap: .25rem .75rem; margin: 0;
  padding: 0; }
.logout { margin-left: auto; display: flex; gap: .5rem; align-items: center; font-size: .9rem; }
main { max-width: 1200px; margin: 0 auto; padding: 1rem 1.5rem 3rem; }
h1 { font-size: 1.6rem; margin: .5rem 0 .25rem; }
h2 { font-size: 1.25rem; margin: 2rem 0 .5rem; border-bottom: 2px solid var(--line);
  padding-bottom: .2rem; }
.live-status { color: var(--muted); font-size: .9rem; margin: 0 0 1rem; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(160px, 1fr));
  gap: .75rem; margin: 1rem 0; }
.figures div { background: var(--band); border-left: 4px solid var(--accent);
  padding: .5rem .75rem; }
.figures dt { font-size: .85rem; color: var(--muted); }
.figures dd { margin: 0; font-size: 1.4rem; font-weight: 650; font-variant-numeric: tabular-nums; }
.figures dd.long { font-size: 1.05rem; padding-top: .2rem; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 1.5rem; }
figure { margin: .5rem 0 1rem; }
figcaption { font-weight: 600; margin-bottom: .25rem; }
.chart { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); }
.table-wrap { overflow-x: auto; margin: .5rem 0 1rem; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { text-align: left; padding: .3rem .55rem; border-bottom: 1px solid var(--line);
  vertical-align: top; }
thead th { background: var(--band); border-bottom: 2px solid #8a8a8a; }
tbody tr:nth-child(even) { background: #fafbfc; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.empty { color: var(--muted); font-style: italic; }
time, .nowrap { white-space: nowrap; }
.narrow { max-width: 40rem; }
.mono, code { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: .9em; }
form.inline { display: flex; flex-wrap: wrap; gap: .5rem; align-items: end; margin: .5rem 0 1rem; }
label { display: block; font-weight: 600; font-size: .9rem; }
input[type=text], input[type=password], input[type=search], select { font: inherit;
  padding: .35rem .5rem; border: 1px solid #767676; border-radius: 3px; min-width: 16rem; }
button { font: inherit; padding: .35rem .9rem; border: 1px solid #0b4a8a; border-radius: 3px;
  background: var(--accent); color: #fff; cursor: pointer; }
button.secondary { background: #fff; color: var(--accent); }
.notice { padding: .6rem .9rem; border-left: 4px solid var(--good); background: #eef7f0; }
.error { padding: .6rem .9rem; border-left: 4px solid var(--bad); background: #fbeeee; }
.state-dead { color: var(--bad); font-weight: 600; }
.state-delivered { color: var(--good); }
.hint { color: var(--muted); font-size: .9rem; }
.login { max-width: 28rem; margin: 3rem auto; }
.login p, .login label { margin: .75rem 0 .25rem; }
"""

DASHBOARD_JS = """\
/* chfw dashboards, no library. 1. A sign-in link carries the token in its fragment
   (#token=...), which browsers never send to the server: fill the form and submit it.
   2. Refresh figures and charts from the page's JSON endpoint. */
(function () {
  "use strict";
  var login = document.getElementById("login");
  if (login && window.location.hash.indexOf("#token=") === 0) {
    var token = decodeURIComponent(window.location.hash.slice(7));
    window.history.replaceState(null, "", window.location.pathname);
    document.getElementById("token").value = token;
    login.submit();
    return;
  }
  var body = document.body;
  var url = body && body.getAttribute("data-live-url");
  if (!url) { return; }
  var every = parseInt(body.getAttribute("data-live-interval") || "3000", 10);
  var status = document.getElementById("live-status");
  function schedule() { window.setTimeout(refresh, every); }
  function refresh() {
    if (document.hidden) { schedule(); return; }
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        document.querySelectorAll("[data-live]").forEach(function (el) {
          var value = (data.live || {})[el.getAttribute("data-live")];
          if (value !== undefined && value !== null) { el.textContent = String(value); }
        });
        var version = String(data.version);
        document.querySelectorAll("[data-chart]").forEach(function (el) {
          if (el.getAttribute("data-version") === version) { return; }
          fetch(el.getAttribute("data-chart"), { credentials: "same-origin" })
            .then(function (response) { return response.ok ? response.text() : null; })
            .then(function (svg) {
              if (svg) { el.innerHTML = svg; el.setAttribute("data-version", version); }
            });
        });
        if (status) { status.textContent = "Live: updated at " + data.at; }
      })
      .catch(function () {
        if (status) { status.textContent = "Live updates paused: no answer from the server"; }
      })
      .then(schedule);
  }
  schedule();
})();
"""
