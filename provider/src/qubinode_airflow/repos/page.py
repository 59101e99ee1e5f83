# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""The "DAG repositories" page that Airflow's UI shows (an external view of the plugin). It reads
/qubinode/repos with the UI's own session, lists each repository's requirements and recent runs (validations, pins, checks,
removals: the result and who asked), and offers "Add a repository", "Sync now" and "Remove" per repository, and
"Roll back" to one of the last validated commits of a pinned one."""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>DAG repositories</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1a202c; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid #e2e8f0; vertical-align: top; }
  th { background: #f7fafc; font-weight: 600; }
  code { font-size: .85em; }
  .err { color: #c53030; }
  .ok { color: #2f855a; }
  button { padding: .25rem .7rem; cursor: pointer; }
  #message { margin: .8rem 0; min-height: 1.2em; }
  #add form { margin: .6rem 0 1rem; display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; }
  #add form p { flex-basis: 100%; margin: 0; }
  .runs ul { margin: .2rem 0; padding-left: 1.1rem; font-size: .85em; }
  .requirements { font-size: .85em; margin-top: .2rem; }
</style>
</head>
<body>
<h1>DAG repositories</h1>
<p>Git repositories registered with qubinode.airflow, the commit each serves and what Airflow parsed from it.</p>
<div id="message" role="status"></div>
<details id="add">
  <summary>Add a repository</summary>
  <form id="add-form" autocomplete="off">
    <p>The register DAG fetches it, validates it in the sandbox and serves it only when it passes; a token is kept
      in the connection qubinode_git_&lt;name&gt;, never in the run.</p>
    <label>Name <input name="name" required pattern="[A-Za-z0-9_-]{1,100}"></label>
    <label>Git URL <input name="url" required size="50" placeholder="https://git.example.com/team/dags.git"></label>
    <label>Ref <input name="ref" value="main"></label>
    <label>DAG directory <input name="subdir" placeholder="dags"></label>
    <label>Import paths <input name="import_paths" placeholder="plugins, lib" title="Directories the DAGs import from, comma-separated"></label>
    <label>Requirements file <input name="requirements_file" placeholder="requirements.txt"></label>
    <label>Tests <input name="test_dir" placeholder="tests"></label>
    <label><input type="checkbox" name="pin" checked> Pinned (validated commits only)</label>
    <label>Token <input type="password" name="token" autocomplete="new-password"></label>
    <button type="submit">Add</button>
  </form>
</details>
<table>
  <thead><tr><th>Repository</th><th>Ref</th><th>Pinned commit</th><th>Served version</th><th>Last refresh</th>
    <th>DAGs</th><th>Import errors</th><th></th></tr></thead>
  <tbody id="repos"><tr><td colspan="8">Loading...</td></tr></tbody>
</table>
<script>
const base = location.pathname.replace(/\\/ui\\/?$/, "");
function cell(text, cls) {
  const td = document.createElement("td");
  if (cls) td.className = cls;
  td.textContent = text;
  return td;
}
function short(sha) { return sha ? sha.slice(0, 12) : "-"; }
async function load() {
  const tbody = document.getElementById("repos");
  const resp = await fetch(base + "/repos", {credentials: "same-origin"});
  if (!resp.ok) {
    tbody.replaceChildren();
    const tr = document.createElement("tr");
    tr.appendChild(cell("Cannot read the repositories: HTTP " + resp.status, "err"));
    tbody.appendChild(tr);
    return;
  }
  const data = await resp.json();
  tbody.replaceChildren();
  if (!data.repositories.length) {
    const tr = document.createElement("tr");
    tr.appendChild(cell("No repository is registered."));
    tbody.appendChild(tr);
  }
  for (const r of data.repositories) {
    const tr = document.createElement("tr");
    tr.dataset.repo = r.name;
    const name = cell(r.name);
    const url = document.createElement("div");
    url.appendChild(document.createElement("code")).textContent = r.url;
    name.appendChild(url);
    // What its requirements file asks for, and the versions every host installed for it.
    if ((r.requirements || []).length) {
      const req = document.createElement("div");
      req.className = "requirements";
      req.textContent = "Requirements: " + r.requirements.join(", ")
        + ((r.packages || []).length ? " (installed: " + r.packages.join(", ") + ")" : "");
      name.appendChild(req);
    }
    // Its last validations, pins, checks and removals: why, which commit, the result, who asked.
    if ((r.runs || []).length) {
      const runs = document.createElement("details");
      runs.className = "runs";
      runs.appendChild(document.createElement("summary")).textContent = r.runs.length + " recent run(s)";
      const list = document.createElement("ul");
      for (const run of r.runs) {
        const item = document.createElement("li");
        const link = document.createElement("a");
        link.href = "/dags/" + encodeURIComponent(run.dag_id) + "/runs/" + encodeURIComponent(run.run_id);
        link.textContent = run.why + (run.commit ? " " + short(run.commit) : "");
        item.append(link, ": " + run.state + " (" + (run.by || "-") + ", " + (run.at || "-") + ")");
        item.className = run.state === "success" ? "ok" : (run.state === "failed" ? "err" : "");
        list.appendChild(item);
      }
      runs.appendChild(list);
      name.appendChild(runs);
    }
    tr.appendChild(name);
    tr.appendChild(cell(r.ref || "-"));
    tr.appendChild(cell(r.pinned ? short(r.pinned_commit) : "follows " + (r.ref || "-")));
    tr.appendChild(cell(short(r.served_version)));
    tr.appendChild(cell(r.last_refresh || "never"));
    tr.appendChild(cell(String(r.dag_count), "dag-count"));
    const errs = cell(r.import_errors.length ? r.import_errors.map(e => e.file + ": " + e.message).join("\\n") : "none",
                      r.import_errors.length ? "err" : "ok");
    errs.style.whiteSpace = "pre-wrap";
    tr.appendChild(errs);
    const actions = document.createElement("td");
    const btn = document.createElement("button");
    btn.textContent = "Sync now";
    btn.addEventListener("click", () => sync(r.name, btn));
    const rm = document.createElement("button");
    rm.className = "remove";
    rm.textContent = "Remove";
    rm.addEventListener("click", () => remove(r.name, rm));
    actions.append(btn, " ", rm);
    // A pinned repository goes back to one of its last validated commits, validated again on the way.
    const older = (r.history || []).filter(c => c !== r.pinned_commit);
    if (r.pinned && older.length) {
      const div = document.createElement("div");
      div.className = "rollback";
      const sel = document.createElement("select");
      sel.setAttribute("aria-label", "Commit to roll " + r.name + " back to");
      for (const c of older) {
        const opt = document.createElement("option");
        opt.value = c;
        opt.textContent = short(c);
        sel.appendChild(opt);
      }
      const back = document.createElement("button");
      back.textContent = "Roll back";
      back.addEventListener("click", () => rollback(r.name, sel.value, back));
      div.append(sel, " ", back);
      actions.appendChild(div);
    }
    tr.appendChild(actions);
    tbody.appendChild(tr);
  }
}
// POST (or DELETE) one repository's action; the message says what was asked, or why it was refused.
async function act(name, path, method, payload, what, asked, btn) {
  btn.disabled = true;
  const msg = document.getElementById("message");
  const init = {method: method, credentials: "same-origin", headers: {"X-Qubinode-Request": "1"}};
  if (payload) {
    init.body = JSON.stringify(payload);
    init.headers["Content-Type"] = "application/json";
  }
  const resp = await fetch(base + "/repos/" + encodeURIComponent(name) + path, init);
  const body = await resp.json().catch(() => ({}));
  msg.textContent = resp.ok
    ? name + ": " + (body.action === asked[0] ? asked[1] : (body.detail || "nothing to do"))
    : name + ": " + what + " refused (HTTP " + resp.status + ")" + (typeof body.detail === "string" ? " - " + body.detail : "");
  msg.className = resp.ok ? "ok" : "err";
  btn.disabled = false;
  setTimeout(load, 2000);
}
function sync(name, btn) {
  return act(name, "/sync", "POST", null, "sync", ["refresh", "refresh requested"], btn);
}
function rollback(name, commit, btn) {
  if (!confirm("Roll " + name + " back to " + short(commit) + "? It is validated again before it is pinned.")) return;
  return act(name, "/rollback", "POST", {commit: commit}, "rollback",
             ["rollback", "rollback to " + short(commit) + " requested"], btn);
}
function remove(name, btn) {
  if (!confirm("Remove " + name + "? Airflow stops serving its DAGs and its git connection is deleted.")) return;
  return act(name, "", "DELETE", null, "remove", ["remove", "removal requested: the remove DAG runs it"], btn);
}
document.getElementById("add-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const f = form.elements;
  const req = {name: f.name.value.trim(), url: f.url.value.trim(), ref: f.ref.value.trim() || "main",
               subdir: f.subdir.value.trim() || null, pin: f.pin.checked};
  const paths = f.import_paths.value.split(",").map(p => p.trim()).filter(p => p);
  if (paths.length) req.import_paths = paths;
  if (f.requirements_file.value.trim()) req.requirements_file = f.requirements_file.value.trim();
  if (f.test_dir.value.trim()) req.test_dir = f.test_dir.value.trim();
  if (f.token.value) req.token = f.token.value;
  const btn = form.querySelector("button");
  btn.disabled = true;
  const msg = document.getElementById("message");
  const resp = await fetch(base + "/repos", {method: "POST", credentials: "same-origin", body: JSON.stringify(req),
                                             headers: {"X-Qubinode-Request": "1", "Content-Type": "application/json"}});
  const body = await resp.json().catch(() => ({}));
  msg.textContent = resp.ok
    ? req.name + ": " + (body.action === "add" ? "add requested: the register DAG validates it" : (body.detail || "nothing done"))
    : req.name + ": add refused (HTTP " + resp.status + ")" + (typeof body.detail === "string" ? " - " + body.detail : "");
  msg.className = resp.ok ? "ok" : "err";
  f.token.value = "";
  btn.disabled = false;
  setTimeout(load, 2000);
});
load();
</script>
</body>
</html>
"""
