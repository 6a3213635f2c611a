/*! callswitch web-callback widget v1 | Apache-2.0 */
(function () {
  "use strict";
  var W = window, D = document;
  if (W.Callswitch && W.Callswitch.version) return; // the snippet was included twice
  var VERSION = "__CALLSWITCH_VERSION__";
  var CSS = "__CALLSWITCH_CSS__";
  var STORE = "callswitch.v1";
  var UTM = ["source", "medium", "campaign", "term", "content"];
  var FIELDS = ["name", "phone", "preferred_time", "consent"];
  var CANCELLABLE = ["queued", "scheduled", "dialing_agent", "agent_answered"];
  var FINAL = ["completed", "failed", "cancelled", "expired", "rejected"];
  var DEFAULTS = {
    siteKey: "", apiBase: "", position: "right", container: "", schedule: true, showConsent: false,
    language: "", attributes: null, maxPages: 20, zIndex: "",
    accentColor: "", accentTextColor: "", backgroundColor: "", textColor: "", radius: "", fontFamily: "",
    buttonText: "Call me back",
    title: "Request a call back",
    intro: "Leave your number and we'll call you right back.",
    nameLabel: "Your name",
    phoneLabel: "Phone number",
    phoneHint: "Without a country code we read it as {country} (+{code}), e.g. {example}.",
    laterLabel: "Call me later (optional)",
    laterHint: "Leave empty to be called as soon as possible. Your local time.",
    consentText: "I agree to be called back at this number.",
    submitText: "Call me",
    sendingText: "Sending\u2026",
    closeText: "Close",
    cancelText: "Cancel my request",
    newRequestText: "New request",
    scheduledText: "Scheduled for {time}.",
    requiredText: "Please fill in this field.",
    fixErrorsText: "Please correct the marked fields.",
    errorText: "Something went wrong. Please try again.",
    networkErrorText: "We couldn't reach our server. Check your connection and try again.",
    busyText: "Too many requests right now. Please try again in a few minutes.",
    unavailableText: "The service is briefly unavailable. Please try again shortly."
  };

  var script = D.currentScript || D.querySelector("script[data-site-key]") ||
    D.querySelector('script[src*="/widget/v1/callswitch.js"]');
  var cfg = {}, k;
  for (k in DEFAULTS) cfg[k] = DEFAULTS[k];
  var attrs = {};
  merge(W.CallswitchConfig || {});
  if (script) {
    var ds = script.dataset;
    for (k in ds) {
      if (/^attr[A-Z]/.test(k)) attrs[k.charAt(4).toLowerCase() + k.slice(5)] = ds[k];
      else if (k === "attributes") { try { merge({ attributes: JSON.parse(ds[k]) }); } catch (e) { warn("data-attributes is not JSON"); } }
      else if (k in DEFAULTS) cfg[k] = ds[k];
    }
  }
  function merge(o) {
    for (var key in o) {
      if (key === "attributes" && o[key] && typeof o[key] === "object") for (var a in o[key]) attrs[a] = o[key][a];
      else if (key === "texts" && o[key]) merge(o[key]);
      else if (key in DEFAULTS) cfg[key] = o[key];
    }
  }
  function bool(v) { return v === true || (typeof v === "string" && !/^(false|0|no|off)$/i.test(v)); }
  function warn(m) { if (W.console) W.console.warn("callswitch: " + m); }
  if (!cfg.siteKey) { warn("no data-site-key on the script tag"); return; }
  var api = String(cfg.apiBase || (script && script.src ? script.src.replace(/\/widget\/v1\/callswitch\.js.*$/, "") : ""))
    .replace(/\/+$/, "");
  var lang = cfg.language || D.documentElement.lang || "";
  if (!/^[A-Za-z0-9]{1,8}(-[A-Za-z0-9]{1,8})*$/.test(lang)) lang = "";

  // ------------------------------------------------------------------ attribution (kept per browser session)
  function okUrl(u) { return typeof u === "string" && /^https?:\/\//i.test(u) && u.length <= 2048; }
  var sess = {};
  try { sess = JSON.parse(W.sessionStorage.getItem(STORE)) || {}; } catch (e) { sess = {}; }
  function save() { try { W.sessionStorage.setItem(STORE, JSON.stringify(sess)); } catch (e) { /* storage disabled */ } }
  var here = location.href.split("#")[0];
  var q = new URLSearchParams(location.search), utm = {}, anyUtm = false;
  UTM.forEach(function (n) { var v = q.get("utm_" + n); if (v) { utm[n] = v.slice(0, 200); anyUtm = true; } });
  if (!sess.landing) { sess.landing = here; sess.referrer = D.referrer || ""; }
  if (anyUtm) sess.utm = utm;
  sess.pages = (sess.pages || []).filter(okUrl);
  if (okUrl(here) && sess.pages[sess.pages.length - 1] !== here) sess.pages.push(here);
  var maxPages = Math.max(1, Math.min(50, parseInt(cfg.maxPages, 10) || 20));
  sess.pages = sess.pages.slice(-maxPages);
  save();

  // ------------------------------------------------------------------ DOM
  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) { return "&#" + c.charCodeAt(0) + ";"; });
  }
  function fmt(s, v) { return String(s).replace(/\{(\w+)\}/g, function (m, n) { return n in v ? v[n] : m; }); }
  var host = D.createElement("div");
  host.className = "callswitch-widget";
  if (!host.attachShadow || !W.fetch) return;
  var root = host.attachShadow({ mode: "open" });
  if ("adoptedStyleSheets" in root && W.CSSStyleSheet && CSSStyleSheet.prototype.replaceSync) {
    var sheet = new CSSStyleSheet(); sheet.replaceSync(CSS); root.adoptedStyleSheets = [sheet]; // not subject to CSP style-src
  } else { var st = D.createElement("style"); st.textContent = CSS; root.appendChild(st); }
  var vars = { accentColor: "accent", accentTextColor: "accent-text", backgroundColor: "bg", textColor: "text",
    radius: "radius", fontFamily: "font", zIndex: "z" };
  for (k in vars) if (cfg[k]) host.style.setProperty("--cs-" + vars[k], String(cfg[k]));
  var container = cfg.container && D.querySelector(cfg.container);
  var floating = !container && cfg.position !== "none" && cfg.position !== "inline";
  function field(id, name, label, input, hint) {
    return '<div class="cs-f" data-f="' + name + '"><label for="cs-' + id + '">' + esc(label) + "</label>" + input +
      (hint ? '<p class="cs-hint" id="cs-' + id + '-hint">' + esc(hint) + "</p>" : "") +
      '<p class="cs-err" id="cs-' + id + '-err" hidden></p></div>';
  }
  root.innerHTML +=
    '<div class="' + (floating ? "cs-fixed" + (cfg.position === "left" ? " cs-left" : "") : "") + '" part="launcher"' +
    (cfg.position === "none" && !container ? " hidden" : "") + '><button type="button" class="cs-launch" part="button" ' +
    'aria-haspopup="dialog"><svg viewBox="0 0 24 24" aria-hidden="true"><path d="M6.6 10.8a15.1 15.1 0 0 0 6.6 6.6l2.2-2.2a1 1 0 0 1 1-.25 11.4 11.4 0 0 0 3.6.57 1 1 0 0 1 1 1V20a1 1 0 0 1-1 1A17 17 0 0 1 3 4a1 1 0 0 1 1-1h3.5a1 1 0 0 1 1 1c0 1.25.2 2.45.57 3.57a1 1 0 0 1-.25 1z"/></svg>' +
    '<span class="cs-t">' + esc(cfg.buttonText) + "</span></button></div>" +
    '<dialog part="dialog" aria-labelledby="cs-title"><div class="cs-in">' +
    '<div class="cs-head"><h2 id="cs-title">' + esc(cfg.title) + '</h2><button type="button" class="cs-x" aria-label="' +
    esc(cfg.closeText) + '"><span aria-hidden="true">\u00d7</span></button></div>' +
    '<div class="cs-sr" role="status" aria-live="polite" aria-atomic="true"></div>' +
    '<form novalidate><p class="cs-intro">' + esc(cfg.intro) + "</p>" +
    field("name", "name", cfg.nameLabel, '<input id="cs-name" name="name" autocomplete="name" maxlength="100" ' +
      'aria-required="true" aria-describedby="cs-name-err">') +
    field("phone", "phone", cfg.phoneLabel, '<input id="cs-phone" name="phone" type="tel" inputmode="tel" ' +
      'autocomplete="tel" maxlength="40" aria-required="true" aria-describedby="cs-phone-hint cs-phone-err">', " ") +
    (bool(cfg.schedule) ? field("when", "preferred_time", cfg.laterLabel, '<input id="cs-when" name="preferred_time" ' +
      'type="datetime-local" aria-describedby="cs-when-hint cs-when-err">', cfg.laterHint) : "") +
    '<div class="cs-f" data-f="consent" hidden><div class="cs-check"><input type="checkbox" id="cs-consent" ' +
    'name="consent" aria-describedby="cs-consent-err"><label for="cs-consent">' + esc(cfg.consentText) +
    '</label></div><p class="cs-err" id="cs-consent-err" hidden></p></div>' +
    '<p class="cs-err cs-gen" hidden></p>' +
    '<div class="cs-acts"><button type="submit" class="cs-btn cs-pri">' + esc(cfg.submitText) + "</button></div></form>" +
    '<div class="cs-st" hidden><p class="cs-msg"></p><p class="cs-when-t cs-hint" hidden></p><div class="cs-acts">' +
    '<button type="button" class="cs-btn cs-cancel" hidden>' + esc(cfg.cancelText) + "</button>" +
    '<button type="button" class="cs-btn cs-new" hidden>' + esc(cfg.newRequestText) + "</button>" +
    '<button type="button" class="cs-btn cs-done">' + esc(cfg.closeText) + "</button></div></div></div></dialog>";
  function $(s) { return root.querySelector(s); }
  var launch = $(".cs-launch"), dlg = $("dialog"), form = $("form"), live = $(".cs-sr"), gen = $(".cs-gen");
  var submitBtn = $("[type=submit]"), statusBox = $(".cs-st"), msgEl = $(".cs-msg"), whenText = $(".cs-when-t");
  var cancelBtn = $(".cs-cancel"), newBtn = $(".cs-new"), consentBox = $('[data-f="consent"]');
  var phoneHint = $("#cs-phone-hint"), whenInput = $("#cs-when");
  phoneHint.hidden = true;
  (container || D.body).appendChild(host);
  if (!dlg.showModal) { dlg.setAttribute("role", "dialog"); dlg.setAttribute("aria-modal", "true"); }

  function emit(name, detail) {
    host.dispatchEvent(new CustomEvent("callswitch:" + name, { bubbles: true, detail: detail || {} }));
  }
  function announce(text) { live.textContent = ""; setTimeout(function () { live.textContent = text; }, 50); }

  // ------------------------------------------------------------------ site settings (public)
  var site = { max_preferred_days: 14 };
  fetch(api + "/widget/v1/config?site_key=" + encodeURIComponent(cfg.siteKey), { credentials: "omit" })
    .then(function (r) { return r.ok ? r.json() : null; })
    .then(function (s) {
      if (!s) { warn("unknown site key " + cfg.siteKey); return; }
      site = s;
      var country = s.default_region;
      try { country = new Intl.DisplayNames([lang || navigator.language || "en"], { type: "region" }).of(country); } catch (e) { /* old browser */ }
      if (s.example_phone) {
        phoneHint.textContent = fmt(cfg.phoneHint, { country: country, code: s.calling_code, example: s.example_phone });
        phoneHint.hidden = false;
        $("#cs-phone").placeholder = s.example_phone;
      }
      if (s.require_consent || bool(cfg.showConsent)) consentBox.hidden = false;
    })
    .catch(function () { /* the form still works without the hints */ });

  // ------------------------------------------------------------------ open / close, focus
  var opener = null;
  function deepActive() { var a = D.activeElement; while (a && a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement; return a; }
  function open(from) {
    if (dlg.open) return;
    opener = from && from.focus ? from : deepActive();
    if (whenInput) {
      var now = new Date(); whenInput.min = localIso(now);
      whenInput.max = localIso(new Date(now.getTime() + (site.max_preferred_days || 14) * 864e5));
    }
    if (dlg.showModal) dlg.showModal(); else dlg.setAttribute("open", "");
    if (!cur && sess.active && sess.active.id) cur = sess.active; // a request made on an earlier page
    if (cur) { showStatus(); render(); if (!es) watch(cur.id); }
    focusFirst();
    emit("open");
  }
  function close() {
    if (!dlg.open) return;
    if (dlg.close) dlg.close(); else dlg.removeAttribute("open");
    if (opener && opener.isConnected !== false && opener.focus) opener.focus();
    emit("close");
  }
  function focusable() {
    return Array.prototype.filter.call(dlg.querySelectorAll("button,input,a[href]"), function (el) {
      return !el.disabled && el.getClientRects().length > 0;
    });
  }
  function focusFirst() {
    var el = statusBox.hidden ? $("#cs-name") : (cancelBtn.hidden ? $(".cs-done") : cancelBtn);
    el.focus();
  }
  launch.addEventListener("click", function () { open(launch); });
  $(".cs-x").addEventListener("click", close);
  $(".cs-done").addEventListener("click", close);
  dlg.addEventListener("cancel", function (e) { e.preventDefault(); close(); });
  dlg.addEventListener("click", function (e) { if (e.target === dlg) close(); }); // the backdrop
  dlg.addEventListener("keydown", function (e) {
    if (e.key === "Escape") { e.preventDefault(); close(); return; }
    if (e.key !== "Tab") return;
    var els = focusable(), first = els[0], last = els[els.length - 1], a = root.activeElement;
    if (e.shiftKey && (a === first || !a)) { e.preventDefault(); last.focus(); }
    else if (!e.shiftKey && (a === last || !a)) { e.preventDefault(); first.focus(); }
  });
  D.addEventListener("click", function (e) {
    var t = e.target && e.target.closest && e.target.closest("[data-callswitch-open]");
    if (t) { e.preventDefault(); open(t); }
  });

  // ------------------------------------------------------------------ the form
  function localIso(d) {
    function p(n) { return (n < 10 ? "0" : "") + n; }
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + "T" + p(d.getHours()) + ":" + p(d.getMinutes());
  }
  function clearErrors() {
    Array.prototype.forEach.call(root.querySelectorAll("form .cs-err"), function (el) { el.hidden = true; el.textContent = ""; });
    Array.prototype.forEach.call(root.querySelectorAll("[aria-invalid]"), function (el) { el.removeAttribute("aria-invalid"); });
  }
  function showErrors(errs, general) {
    var firstInput = null, seen = {};
    errs.forEach(function (fe) {
      var box = $('[data-f="' + fe.field + '"]');
      if (!box || box.hidden || seen[fe.field]) return;
      seen[fe.field] = 1;
      var input = box.querySelector("input"), err = box.querySelector(".cs-err");
      err.textContent = fe.reason.charAt(0).toUpperCase() + fe.reason.slice(1);
      err.hidden = false;
      input.setAttribute("aria-invalid", "true");
      if (!firstInput) firstInput = input;
    });
    if (general) { gen.textContent = general; gen.hidden = false; }
    announce(general || cfg.fixErrorsText);
    if (firstInput) firstInput.focus();
  }
  var busy = false, idem = "", idemBody = "";
  function newKey() {
    if (W.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16); (W.crypto || W.msCrypto).getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
  }
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    if (busy) return;
    clearErrors();
    var name = $("#cs-name").value.trim(), phone = $("#cs-phone").value.trim(), errs = [];
    var consent = $("#cs-consent").checked;
    if (!name) errs.push({ field: "name", reason: cfg.requiredText });
    if (!phone) errs.push({ field: "phone", reason: cfg.requiredText });
    if (!consentBox.hidden && site.require_consent && !consent) errs.push({ field: "consent", reason: cfg.requiredText });
    if (errs.length) { showErrors(errs); emit("error", { status: 0, error: "incomplete", fields: errs.map(function (x) { return x.field; }) }); return; }
    var body = { site_key: cfg.siteKey, name: name, phone: phone, consent: consent };
    if (whenInput && whenInput.value) {
      var when = new Date(whenInput.value);
      if (!isNaN(when.getTime())) body.preferred_time = when.toISOString();
    }
    if (lang) body.language = lang;
    if (okUrl(here)) body.page_url = here;
    if (sess.pages.length) body.pages = sess.pages;
    if (sess.referrer && sess.referrer.length <= 2048) body.referrer = sess.referrer;
    if (sess.utm) body.utm = sess.utm;
    var hasAttrs = false;
    for (k in attrs) { hasAttrs = true; break; }
    if (hasAttrs) body.attributes = attrs;
    emit("submit", { scheduled: !!body.preferred_time });
    send(body, true);
  });
  function send(body, withExtras) {
    busy = true;
    submitBtn.setAttribute("aria-disabled", "true");
    submitBtn.textContent = cfg.sendingText;
    var json = JSON.stringify(body);
    if (json !== idemBody) { idem = newKey(); idemBody = json; } // a retry of the same request reuses its key
    fetch(api + "/v1/callbacks", {
      method: "POST", credentials: "omit", body: json,
      headers: { "Content-Type": "application/json", "Idempotency-Key": idem }
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) { done(); answer(r.status, j, body, withExtras); });
    }, function () {
      done();
      showErrors([], cfg.networkErrorText);
      emit("error", { status: 0, error: "network" });
    });
  }
  function done() { busy = false; submitBtn.removeAttribute("aria-disabled"); submitBtn.textContent = cfg.submitText; }
  function answer(status, j, body, withExtras) {
    if (status === 200 || status === 202) { accepted(j); return; }
    var fields = j.fields || [], mine = fields.filter(function (f) { return FIELDS.indexOf(f.field) >= 0; });
    if (status === 422 && withExtras && !mine.length && fields.length) {
      // only attribution or attributes were refused: never block the visitor for those
      var slim = {};
      ["site_key", "name", "phone", "consent", "preferred_time", "language"].forEach(function (n) { if (n in body) slim[n] = body[n]; });
      send(slim, false);
      return;
    }
    var general = status === 422 ? (mine.length < fields.length || !mine.length ? cfg.errorText : "") :
      status === 429 ? cfg.busyText : status === 503 ? cfg.unavailableText : cfg.errorText;
    if (status === 401 || status === 403) warn((j.message || "refused") + " (check data-site-key and the site's allowed_origins)");
    showErrors(mine, general);
    emit("error", { status: status, error: j.error || "http_" + status, fields: fields.map(function (f) { return f.field; }) });
  }

  // ------------------------------------------------------------------ status
  var cur = null, es = null, timer = 0, sseFails = 0;
  function accepted(j) {
    emit("accepted", { id: j.id, state: j.state, duplicate: !!j.duplicate });
    form.reset();
    clearErrors();
    showStatus();
    update({ id: j.id, state: j.state, message: j.message, scheduled_for: j.scheduled_for,
      final: FINAL.indexOf(j.state) >= 0, cancellable: CANCELLABLE.indexOf(j.state) >= 0 });
    focusFirst();
    watch(j.id);
  }
  function showStatus() { form.hidden = true; statusBox.hidden = false; }
  function showForm() {
    stopWatch(); cur = null; sess.active = null; save();
    statusBox.hidden = true; form.hidden = false;
    if (dlg.open) $("#cs-name").focus();
  }
  function update(s) {
    var changed = !cur || cur.state !== s.state || cur.message !== s.message || cur.scheduled_for !== s.scheduled_for;
    cur = s;
    sess.active = s.final ? null : s;
    save();
    render();
    if (changed) {
      announce(msgEl.textContent);
      emit("status", { id: s.id, state: s.state, message: s.message, final: s.final, cancellable: s.cancellable,
        scheduled_for: s.scheduled_for || null });
    }
    if (s.final) stopWatch();
  }
  function render() {
    var hadFocus = root.activeElement === cancelBtn;
    msgEl.textContent = cur.message;
    whenText.hidden = !cur.scheduled_for;
    if (cur.scheduled_for) {
      var t = new Date(cur.scheduled_for), txt;
      try { txt = t.toLocaleString(lang || undefined, { dateStyle: "full", timeStyle: "short" }); } catch (e) { txt = t.toLocaleString(); }
      whenText.textContent = fmt(cfg.scheduledText, { time: txt });
    }
    cancelBtn.hidden = !cur.cancellable;
    newBtn.hidden = !cur.final;
    if (hadFocus && cancelBtn.hidden) (cur.final ? newBtn : $(".cs-done")).focus();
  }
  function url(id) { return api + "/v1/callbacks/" + encodeURIComponent(id); }
  function stopWatch() {
    if (es) { es.close(); es = null; }
    clearTimeout(timer);
  }
  function watch(id) {
    stopWatch();
    if (!cur || cur.final) return;
    if (W.EventSource && sseFails < 3) {
      es = new EventSource(url(id) + "/events");
      es.addEventListener("status", function (ev) {
        sseFails = 0;
        try { update(JSON.parse(ev.data)); } catch (e) { /* ignore a broken event */ }
      });
      es.onerror = function () { // EventSource failed or the stream ended early: poll, then try it again
        stopWatch(); sseFails++;
        poll(id, 1000);
      };
    } else poll(id, 5000);
  }
  function poll(id, delay) {
    clearTimeout(timer);
    timer = setTimeout(function () {
      fetch(url(id), { credentials: "omit", cache: "no-store" }).then(function (r) {
        if (r.status === 404) { showForm(); return null; }
        return r.ok ? r.json() : null;
      }).then(function (s) {
        if (s) update(s);
        if (cur && !cur.final) { if (sseFails < 3 && W.EventSource) watch(id); else poll(id, 5000); }
      }, function () { poll(id, 10000); });
    }, delay);
  }
  cancelBtn.addEventListener("click", function () {
    if (!cur || busy) return;
    var id = cur.id;
    busy = true;
    fetch(url(id) + "/cancel", { method: "POST", credentials: "omit" }).then(function (r) {
      return r.json().then(function (j) {
        busy = false;
        if (r.ok) { update(j); emit("cancel", { id: id }); } else poll(id, 0);
      });
    }).catch(function () { busy = false; announce(cfg.networkErrorText); });
  });
  newBtn.addEventListener("click", showForm);

  W.Callswitch = { version: VERSION, open: open, close: close, config: cfg };
  emit("ready", { version: VERSION });
})();
