// m3daemon dashboard: live status, drag-and-drop uploads, the folder browser, provider presets.
// Every form also works without this script; it only makes the pages livelier.
"use strict";

(function () {
  document.documentElement.classList.add("js");
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const HEADERS = { "X-CSRF-Token": csrf, "X-Requested-With": "m3daemon", "Accept": "application/json" };

  function post(url, body) {
    return fetch(url, { method: "POST", body: body, headers: HEADERS, credentials: "same-origin" })
      .then((resp) => resp.json().catch(() => ({ ok: false, message: "HTTP " + resp.status })));
  }

  function messageBox(kind, message, remedy) {
    const box = document.createElement("div");
    box.className = "flash flash-" + kind;
    box.setAttribute("role", kind === "error" ? "alert" : "status");
    const p = document.createElement("p");
    p.className = "message";
    p.textContent = message || "";
    box.appendChild(p);
    if (remedy) {
      const r = document.createElement("p");
      r.className = "remedy";
      r.textContent = remedy;
      box.appendChild(r);
    }
    return box;
  }

  // --- the congregation selector -------------------------------------------------------------
  document.querySelectorAll("[data-autosubmit]").forEach((el) => {
    el.addEventListener("change", () => el.form.submit());
  });

  // --- confirmation of removals --------------------------------------------------------------
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (ev) => {
      if (!window.confirm(form.dataset.confirm)) ev.preventDefault();
    });
  });

  // --- live status (short polling) -----------------------------------------------------------
  const card = document.querySelector("[data-status-url]");
  if (card) {
    const url = card.dataset.statusUrl;
    const apply = (data) => {
      card.querySelectorAll("[data-live]").forEach((el) => {
        const v = data[el.dataset.live];
        el.textContent = v === null || v === undefined ? "" : String(v);
      });
      card.querySelectorAll("[data-live-value]").forEach((el) => {
        el.value = data[el.dataset.liveValue] || 0;
      });
      card.querySelectorAll("[data-live-show]").forEach((el) => {
        el.hidden = !data[el.dataset.liveShow];
      });
      card.querySelectorAll("[data-live-state]").forEach((el) => {
        el.className = "badge state-" + data.state;
      });
      const err = document.querySelector("[data-live-error]");
      if (err) {
        err.hidden = !data.error;
        if (data.error) {
          err.querySelector('[data-error="message"]').textContent = data.error.message;
          err.querySelector('[data-error="remedy"]').textContent = data.error.remedy;
          const act = err.querySelector('[data-error="action"]');
          if (act) {
            act.hidden = !data.error.action;
            if (data.error.action) { act.href = data.error.action.href; act.textContent = data.error.action.label; }
          }
        }
      }
      card.dataset.state = data.state;
    };
    let delay = 1000;
    const tick = () => {
      fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin", cache: "no-store" })
        .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
        .then((data) => { apply(data); delay = data.syncing ? 500 : 1500; })
        .catch(() => { delay = 5000; })
        .finally(() => window.setTimeout(tick, delay));
    };
    window.setTimeout(tick, 500);
  }

  // --- uploads: drag and drop, or the file chooser; XHR shows the progress ---------------------
  document.querySelectorAll("form[data-upload]").forEach((form) => {
    const zone = form.querySelector("[data-dropzone]");
    const input = form.querySelector('input[type="file"]');
    const box = form.querySelector(".upload-progress");
    const bar = box.querySelector("progress");
    const text = box.querySelector(".upload-text");

    const send = (files) => {
      if (!files || !files.length) return;
      const data = new FormData();
      new FormData(form).forEach((value, key) => { if (key !== "file") data.append(key, value); });
      let total = 0;
      Array.from(files).forEach((f) => { data.append("file", f, f.name); total += f.size; });
      box.hidden = false;
      bar.value = 0;
      text.textContent = form.dataset.textSending;
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      Object.entries(HEADERS).forEach(([k, v]) => xhr.setRequestHeader(k, v));
      xhr.setRequestHeader("X-Flash", "1");
      xhr.upload.addEventListener("progress", (ev) => {
        const size = ev.lengthComputable ? ev.total : total;
        const pct = size ? Math.min(100, Math.round((ev.loaded * 100) / size)) : 0;
        bar.value = pct;
        text.textContent = pct + " % · " + Math.round(ev.loaded / 1000) + " kB";
        form.dataset.progress = String(pct);
      });
      xhr.upload.addEventListener("load", () => {
        bar.removeAttribute("value");  // indeterminate: the daemon now sends it to the server
        text.textContent = form.dataset.textServer;
      });
      xhr.addEventListener("load", () => { window.location.reload(); });
      xhr.addEventListener("error", () => {
        text.textContent = form.dataset.textInterrupted;
        form.dataset.progress = "error";
      });
      xhr.send(data);
    };

    ["dragenter", "dragover"].forEach((name) => zone.addEventListener(name, (ev) => {
      ev.preventDefault();
      zone.classList.add("dragging");
    }));
    ["dragleave", "dragend"].forEach((name) => zone.addEventListener(name, () => zone.classList.remove("dragging")));
    zone.addEventListener("drop", (ev) => {
      ev.preventDefault();
      zone.classList.remove("dragging");
      send(ev.dataTransfer && ev.dataTransfer.files);
    });
    input.addEventListener("change", () => send(input.files));
    form.addEventListener("submit", (ev) => { ev.preventDefault(); send(input.files); });
  });

  // --- an invitation: a dropped or chosen file is read into the code box ----------------------
  const invite = document.querySelector("form[data-invite]");
  if (invite) {
    const code = invite.querySelector("textarea");
    const fileInput = invite.querySelector('input[type="file"]');
    const zone = invite.querySelector("[data-invite-drop]");
    const readFile = (file) => {
      if (!file) return;
      file.text().then((text) => {
        try { code.value = JSON.parse(text).code || text; } catch (e) { code.value = text.trim(); }
        fileInput.value = "";
      });
    };
    fileInput.addEventListener("change", () => readFile(fileInput.files[0]));
    ["dragenter", "dragover"].forEach((n) => zone.addEventListener(n, (ev) => { ev.preventDefault(); zone.classList.add("dragging"); }));
    ["dragleave", "dragend"].forEach((n) => zone.addEventListener(n, () => zone.classList.remove("dragging")));
    zone.addEventListener("drop", (ev) => {
      ev.preventDefault();
      zone.classList.remove("dragging");
      readFile(ev.dataTransfer && ev.dataTransfer.files[0]);
    });
  }

  // --- connection: presets, folder browser, test --------------------------------------------
  const conn = document.querySelector("form[data-connection]");
  if (conn) {
    const $ = (name) => conn.querySelector('[name="' + name + '"]');
    const url = $("url"), user = $("username"), folder = $("folder");
    const note = conn.querySelector("#provider-note");
    let template = null;
    const fillFolder = () => {
      if (template) folder.value = template.split("<username>").join(user.value.trim() || "<username>");
    };
    conn.querySelector("[data-presets]").addEventListener("change", (ev) => {
      const opt = ev.target.selectedOptions[0];
      if (!opt || !opt.value) { template = null; note.textContent = ""; return; }
      url.value = opt.dataset.url || "";
      url.placeholder = opt.dataset.urlHint || "https://host[:port]";
      template = opt.dataset.folder;
      fillFolder();
      note.textContent = opt.dataset.note || "";
      (opt.dataset.url ? user : url).focus();
    });
    user.addEventListener("input", fillFolder);
    folder.addEventListener("input", () => { template = null; });

    // the address, checked as it is typed (the server checks it again)
    const urlHint = conn.querySelector("#url-hint");
    const checkUrl = () => {
      const v = url.value.trim();
      urlHint.textContent = /^http:\/\//i.test(v) ? url.dataset.textHttp : (/\s/.test(v) ? url.dataset.textSpace : "");
      urlHint.classList.toggle("warning", !!urlHint.textContent);
    };
    url.addEventListener("input", checkUrl);
    checkUrl();

    const result = conn.querySelector("#connection-result");
    const browser = conn.querySelector(".browser");
    const list = browser.querySelector("[data-browser-list]");
    const pathEl = browser.querySelector("[data-browser-path]");
    const msg = browser.querySelector("[data-browser-message]");
    const hintBox = browser.querySelector("[data-browser-hint]");
    const hintText = browser.querySelector("[data-browser-hint-text]");
    let current = null, parent = null, suggested = null;
    // keep: the browse that a failed test opens must not clear the error that says why it opened
    const load = (path, keep = false) => {
      const data = new FormData(conn);
      data.set("path", path);
      msg.textContent = "…";
      post(conn.dataset.browseUrl, data).then((res) => {
        list.textContent = "";
        hintBox.hidden = true;
        if (!res.ok) {
          msg.textContent = res.message + (res.remedy ? " " + res.remedy : "");
          pathEl.textContent = path;
          current = path;
          parent = path.replace(/\/+$/, "").replace(/\/[^/]*$/, "") || "/";
          return;
        }
        current = res.path; parent = res.parent;
        pathEl.textContent = res.path;
        if (!keep) result.textContent = "";  // a good browse the person asked for clears an old error
        suggested = res.hint ? res.hint.suggested : null;
        if (res.hint) { hintText.textContent = res.hint.reason + " "; hintBox.hidden = false; }
        msg.textContent = res.folders.length ? "" : browser.dataset.textEmpty;
        res.folders.forEach((f) => {
          const li = document.createElement("li");
          const b = document.createElement("button");
          b.type = "button";
          b.textContent = f.name;
          b.addEventListener("click", () => load(f.path));
          li.appendChild(b);
          list.appendChild(li);
        });
        const first = list.querySelector("button");
        if (first) first.focus();
      });
    };
    conn.querySelector("[data-browse]").addEventListener("click", () => {
      browser.hidden = false;
      load(folder.value.trim() || "/");
    });
    browser.querySelector("[data-browser-up]").addEventListener("click", () => { if (parent) load(parent); });
    browser.querySelector("[data-browser-hint-use]").addEventListener("click", () => { if (suggested) load(suggested); });
    browser.querySelector("[data-browser-use]").addEventListener("click", () => {
      if (current) { folder.value = current; template = null; }
      browser.hidden = true;
      folder.focus();
    });

    const testButton = conn.querySelector("[data-test]");
    const fingerprint = $("ca_fingerprint");
    testButton.addEventListener("click", (ev) => {
      ev.preventDefault();
      result.textContent = "";
      result.appendChild(messageBox("pending", result.dataset.textTesting, ""));
      post(testButton.formAction, new FormData(conn)).then((res) => {
        result.textContent = "";
        const box = messageBox(res.ok ? "ok" : "error", res.message, res.remedy);
        if (!res.ok && res.fingerprint && fingerprint) {
          // the person compared it with the coordinator's: pinning is one click, as in the terminal
          const pin = document.createElement("button");
          pin.type = "button";
          pin.className = "primary";
          pin.dataset.pin = "";
          pin.textContent = result.dataset.textPin;
          pin.addEventListener("click", () => {
            fingerprint.value = res.fingerprint;
            conn.querySelector("#certificate").open = true;
            testButton.click();
          });
          box.appendChild(pin);
        }
        result.appendChild(box);
        if (!res.ok && res.kind === "FolderNotFoundError") {
          // a wrong folder: the folders that are there, one level up (nothing needs to be saved first)
          browser.hidden = false;
          load(folder.value.trim().replace(/\/+$/, "").replace(/\/[^/]*$/, "") || "/", true);
        }
      });
    });
  }
})();
