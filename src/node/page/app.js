// hcmr checkpoint page. Served under a CSP without 'unsafe-inline': all script is here.
//
// Login: the API (all but /api/info) needs the API token of a caller with role verifier, sent as
// "Authorization: Bearer ..." on every request (never a cookie, so another site cannot make the
// browser use it). The page asks for the token, checks it with POST /api/login, and keeps it in
// sessionStorage (gone when the tab closes; "log out" removes it at once). A 401 answer returns
// the page to the login panel.
//
// Privacy: apart from that token nothing is written to localStorage, sessionStorage, cookies or
// IndexedDB. The last scanned code and the verdict's details live in this script's memory only
// until the panel returns to "ready"; a typed document number only until its answer arrives.
// Every text goes into the page through textContent, never as HTML.
(function () {
  "use strict";

  var READY_AFTER_MS = 8000; // a verdict returns to "ready" by itself after this
  var TYPING_GRACE_MS = 60000; // ...or this, while staff type a document number
  var REQUEST_TIMEOUT_MS = 10000;
  var CAMERA_REPEAT_MS = 4000; // the same code seen again by the camera within this is ignored
  var TOKEN_KEY = "hcmr.verifier-token"; // the one sessionStorage entry
  var SCANNABLE = /^\s*HCMRT?1:/i; // a person's health code, or a vehicle's trip manifest
  var MANIFEST = /^HCMRT1:/i;

  var STATUS = {
    green: { zh: "绿码", en: "GREEN" },
    yellow: { zh: "黄码", en: "YELLOW" },
    red: { zh: "红码", en: "RED" },
  };

  function $(id) {
    return document.getElementById(id);
  }

  var el = {
    code: $("code"),
    verdict: $("verdict"),
    icon: $("verdict-icon"),
    title: $("verdict-title"),
    titleEn: $("verdict-title-en"),
    status: $("status"),
    reasonZh: $("reason-zh"),
    reasonSep: $("reason-sep"),
    reasonEn: $("reason-en"),
    detail: $("detail"),
    advice: $("advice"),
    adviceZh: $("advice-zh"),
    adviceEn: $("advice-en"),
    name: $("subject-name"),
    id: $("subject-id"),
    docLabel: $("doc-label"),
    issuer: $("issuer"),
    issuerLabel: $("issuer-label"),
    checkedAt: $("checked-at"),
    validUntil: $("valid-until"),
    syncLine: $("sync-line"),
    syncAge: $("sync-age"),
    count: $("count"),
    countOk: $("count-ok"),
    countNo: $("count-no"),
    newShift: $("new-shift"),
    checkpoint: $("checkpoint"),
    nodeProvince: $("node-province"),
    match: $("match"),
    docType: $("doc-type"),
    docNumber: $("doc-number"),
    matchBtn: $("match-btn"),
    matchResult: $("match-result"),
    countdown: $("countdown"),
    focusWarning: $("focus-warning"),
    cameraBtn: $("camera-btn"),
    cameraBox: $("camera-box"),
    video: $("camera-video"),
    scanRow: $("scan-row"),
    session: $("session"),
    caller: $("caller"),
    logout: $("logout"),
    login: $("login"),
    loginForm: $("login-form"),
    token: $("token"),
    loginBtn: $("login-btn"),
    loginMessage: $("login-message"),
  };

  // The checkpoint id, from ?checkpoint=...; the server keeps at most 64 printable characters.
  var checkpoint = (function () {
    var raw = "";
    try {
      raw = new URLSearchParams(window.location.search).get("checkpoint") || "";
    } catch (e) {
      raw = "";
    }
    // eslint-disable-next-line no-control-regex
    raw = raw.replace(/[\u0000-\u001f\u007f]/g, "").trim().slice(0, 64);
    return raw || "unnamed";
  })();
  el.checkpoint.textContent = checkpoint;

  // Shift counters: memory only.
  var shift = { total: 0, ok: 0, no: 0 };

  // The verdict on screen.
  var lastCode = null; // the code the identity match is asked about
  var lastIssuer = null; // {code, name_zh, name_en} of the code on screen
  var seq = 0; // numbers requests, so a late answer never replaces a newer one
  var readyTimer = null;
  var matchSeq = 0;

  // The login: {token, caller} while logged in, null otherwise.
  var session = null;
  var loginSeq = 0;

  function storedToken() {
    try {
      return window.sessionStorage.getItem(TOKEN_KEY) || "";
    } catch (e) {
      return "";
    }
  }

  function storeToken(token) {
    try {
      window.sessionStorage.setItem(TOKEN_KEY, token);
    } catch (e) {
      // No sessionStorage (a privacy setting): the login lasts as long as the page.
    }
  }

  function forgetToken() {
    try {
      window.sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) {
      // nothing stored
    }
  }

  function setText(node, text) {
    node.textContent = text == null ? "" : String(text);
  }

  function formatAge(secs) {
    if (secs < 90) return secs + " 秒前 / " + secs + " s ago";
    var m = Math.round(secs / 60);
    if (m < 90) return m + " 分钟前 / " + m + " min ago";
    var h = Math.round(m / 60);
    return h + " 小时前 / " + h + " h ago";
  }

  function issuerText(iss) {
    if (!iss) return "未知 / unknown";
    return iss.name_zh + " " + iss.name_en + " (" + iss.code + ")";
  }

  // "中文 / English" -> ["中文", "English"]
  function splitExplanation(text) {
    var s = String(text || "");
    var i = s.indexOf(" / ");
    if (i < 0) return [s, ""];
    return [s.slice(0, i), s.slice(i + 3)];
  }

  // What staff can do instead, in both languages (hidden when there is nothing to say).
  function setAdvice(advice) {
    setText(el.adviceZh, advice ? advice[0] : "");
    setText(el.adviceEn, advice ? advice[1] : "");
    el.advice.hidden = !advice;
  }

  // The node cannot be asked: the two ways a gate keeps working.
  var OFFLINE_ADVICE = [
    "请改用离线核验（hcmr verify --offline 与离线信任包），或将码卡上打码的姓名、证件号与证件人工比对",
    "use the offline check (hcmr verify --offline with a trust bundle), or compare the masked name and ID number on the code's card with the document by eye",
  ];

  // A scan that is no health code: what to do, never the decoder's own words.
  var MALFORMED_ADVICE = [
    "请持码人打开本人健康码后重新扫描；其他二维码不是健康码",
    "ask the holder to open their health code and scan again; other QR codes are not health codes",
  ];

  function setReason(zh, en) {
    setText(el.reasonZh, zh);
    setText(el.reasonEn, en);
    setText(el.reasonSep, zh && en ? " / " : "");
  }

  // ---- focus: the scanner's keystrokes must always land in #code ----

  function typingNumber() {
    var a = document.activeElement;
    return a === el.docNumber || a === el.docType;
  }

  function refocus() {
    if (!session) {
      if (document.activeElement !== el.token) el.token.focus();
      return;
    }
    if (typingNumber()) return;
    if (document.activeElement !== el.code) {
      try {
        el.code.focus({ preventScroll: true });
      } catch (e) {
        el.code.focus();
      }
    }
  }

  el.code.addEventListener("blur", function () {
    window.setTimeout(refocus, 0);
  });
  el.code.addEventListener("focus", function () {
    el.focusWarning.hidden = true;
  });
  window.addEventListener("focus", function () {
    el.focusWarning.hidden = true;
    refocus();
  });
  window.addEventListener("blur", function () {
    // Another window took the keyboard: scans would go there.
    if (session) el.focusWarning.hidden = false;
  });
  el.focusWarning.addEventListener("click", refocus);
  document.addEventListener("click", function (e) {
    var t = e.target;
    if (t && t.closest && (t.closest("#match") || t.closest("#login"))) return;
    refocus();
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") refocus();
  });
  // Buttons never keep the focus (a scanner's Enter must not press them).
  Array.prototype.forEach.call(document.querySelectorAll("button"), function (b) {
    if (b === el.matchBtn) return;
    b.addEventListener("mousedown", function (e) {
      e.preventDefault();
    });
  });

  // ---- the panel ----

  function clearDetails() {
    setText(el.status, "");
    setReason("", "");
    setText(el.detail, "");
    setAdvice(null);
    setText(el.name, "");
    setText(el.id, "");
    setText(el.issuer, "");
    setText(el.checkedAt, "");
    setText(el.validUntil, "");
    setText(el.syncAge, "");
    el.syncLine.hidden = true;
    window.hcmrVehicle.clear();
    clearMatch();
    lastIssuer = null;
  }

  function clearMatch() {
    el.docNumber.value = "";
    el.docType.value = "id-card";
    setText(el.matchResult, "");
    el.matchResult.dataset.result = "none";
    el.verdict.dataset.match = "";
    el.matchBtn.disabled = false;
    matchSeq++;
  }

  function setState(state, colour) {
    el.verdict.dataset.reason = "";
    el.verdict.dataset.state = state;
    el.verdict.dataset.colour = colour || "none";
  }

  function stopCountdown() {
    if (readyTimer !== null) {
      window.clearTimeout(readyTimer);
      readyTimer = null;
    }
    el.countdown.classList.remove("run-short", "run-long");
  }

  function scheduleReady(ms) {
    stopCountdown();
    readyTimer = window.setTimeout(showReady, ms);
    // Restart the bar's animation.
    void el.countdown.offsetWidth;
    el.countdown.classList.add(ms > READY_AFTER_MS ? "run-long" : "run-short");
  }

  function showReady() {
    stopCountdown();
    lastCode = null;
    clearDetails();
    setState("ready", "none");
    setText(el.icon, "");
    setText(el.title, "请扫码");
    setText(el.titleEn, "Ready — scan a health code");
    if (typingNumber()) el.docNumber.blur();
    refocus();
  }

  function showChecking() {
    stopCountdown();
    clearDetails();
    setState("checking", "none");
    setText(el.icon, "…");
    setText(el.title, "核验中");
    setText(el.titleEn, "Checking…");
  }

  function showError(zh, en, detail, advice) {
    stopCountdown();
    clearDetails();
    lastCode = null;
    setState("error", "none");
    setText(el.icon, "!");
    setText(el.title, "核验失败");
    setText(el.titleEn, "CHECK FAILED — scan again");
    setReason(zh, en);
    setText(el.detail, detail || "");
    setAdvice(advice || null);
    scheduleReady(READY_AFTER_MS);
    refocus();
  }

  function showVerdict(v, code) {
    stopCountdown();
    clearDetails();
    var recognized = v.recognized === true;
    var status = recognized ? STATUS[v.local_status] : null;
    var reason = splitExplanation(v.explanation);
    var shown = v.shown || {};
    lastIssuer = v.issuer || null;

    if (recognized) {
      lastCode = code;
      setState("recognized", status ? v.local_status : "none");
      setText(el.icon, "✓");
      setText(el.title, "互认通过");
      setText(el.titleEn, "RECOGNIZED");
      setText(el.status, status ? status.zh + " " + status.en : "—");
      var s = v.subject || {};
      setText(el.name, s.masked_name || "");
      setText(el.id, s.masked_document_number || "");
      setText(
        el.docLabel,
        s.document_type && s.document_type !== "resident identity card"
          ? "证件号 " + s.document_type
          : "证件号 ID number"
      );
      // Times as the node shows them to people: in its display_utc_offset, with the offset,
      // whatever the device's own time zone.
      setText(el.validUntil, shown.status_valid_until || "");
      el.docType.value = docTypeValue(s.document_type);
    } else {
      // Never a colour, never the subject: what is not recognized shows no health status.
      lastCode = null;
      setState("not-recognized", "none");
      setText(el.icon, "✕");
      setText(el.title, "不予互认");
      setText(el.titleEn, "NOT RECOGNIZED");
    }
    setReason(reason[0], reason[1]);
    if (v.reason === "malformed") {
      // The decoder's detail is for developers (hcmr inspect shows it), not for the gate.
      setAdvice(MALFORMED_ADVICE);
    } else {
      setText(el.detail, recognized ? "" : shown.detail || v.detail || "");
    }
    setText(el.issuer, issuerText(v.issuer));
    // A code not recognized here may be forged: its issuer is only what the code claims.
    setText(el.issuerLabel, recognized ? "签发地 issued by" : "码上所称签发地 issuer named in the code");
    el.verdict.dataset.reason = String(v.reason || "");
    setText(el.checkedAt, shown.verified_at || "");
    if (typeof v.issuer_state_age_secs === "number" && v.issuer_state_age_secs >= 600) {
      setText(el.syncAge, formatAge(v.issuer_state_age_secs));
      el.syncLine.hidden = false;
    }

    shift.total++;
    if (recognized) shift.ok++;
    else shift.no++;
    showCount();

    scheduleReady(READY_AFTER_MS);
    refocus();
  }

  function docTypeValue(label) {
    switch (label) {
      case "passport":
        return "passport";
      case "HK/Macao travel permit":
        return "hk-macao-permit";
      case "Taiwan travel permit":
        return "taiwan-permit";
      case "foreigner permanent residence card":
        return "foreigner-residence";
      case "other document":
        return "other";
      default:
        return "id-card";
    }
  }

  function showCount() {
    setText(el.count, shift.total);
    setText(el.countOk, shift.ok);
    setText(el.countNo, shift.no);
  }

  // ---- talking to the node ----

  // POST of a JSON body with the verifier's token. The token goes only in this header: the
  // request carries no cookie (credentials "omit") and no referrer.
  function postJson(path, body, token) {
    var ctrl = typeof AbortController === "function" ? new AbortController() : null;
    var timer = window.setTimeout(function () {
      if (ctrl) ctrl.abort();
    }, REQUEST_TIMEOUT_MS);
    return fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + token },
      body: JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
      signal: ctrl ? ctrl.signal : undefined,
    })
      .then(function (r) {
        return r
          .json()
          .catch(function () {
            return { error: "HTTP " + r.status };
          })
          .then(function (j) {
            return { ok: r.ok, status: r.status, body: j };
          });
      })
      .finally(function () {
        window.clearTimeout(timer);
      });
  }

  function submit(raw) {
    // Leading white space is never part of a code; trailing CR/LF/tab come from scanners.
    var code = String(raw || "")
      .replace(/^\s+/, "")
      .replace(/[\r\n\t]+$/, "");
    if (!code) return;
    if (!session) {
      showLogin("请先登录 / log in first", "error");
      return;
    }
    var mine = ++seq;
    showChecking();
    if (MANIFEST.test(code)) {
      submitManifest(code, mine);
      return;
    }
    postJson("/api/verify", { code: code, checkpoint_id: checkpoint }, session.token)
      .then(function (r) {
        if (mine !== seq) return;
        if (r.status === 401) {
          loggedOut(r);
          return;
        }
        if (r.ok && r.body && typeof r.body.recognized === "boolean") {
          showVerdict(r.body, code);
        } else if (r.status >= 500) {
          // The node (or a proxy before it) fails: as good as unreachable for the gate.
          showError("核验节点故障", "the node failed", "HTTP " + r.status, OFFLINE_ADVICE);
        } else {
          showError("节点拒绝了请求", "the node refused the request", (r.body && r.body.error) || "HTTP " + r.status);
        }
      })
      .catch(function () {
        if (mine !== seq) return;
        showError("无法连接核验节点", "cannot reach the node", "", OFFLINE_ADVICE);
      });
  }

  // A trip manifest: the vehicle's verdict.
  function submitManifest(manifest, mine) {
    postJson("/api/verify-manifest", { manifest: manifest, checkpoint_id: checkpoint }, session.token)
      .then(function (r) {
        if (mine !== seq) return;
        if (r.status === 401) {
          loggedOut(r);
          return;
        }
        if (r.ok && r.body && typeof r.body.pass === "boolean") {
          showManifest(r.body);
        } else if (r.status >= 500) {
          showError("核验节点故障", "the node failed", "HTTP " + r.status, STOP_ADVICE);
        } else {
          showError("节点拒绝了请求", "the node refused the request", (r.body && r.body.error) || "HTTP " + r.status);
        }
      })
      .catch(function () {
        if (mine !== seq) return;
        showError("无法连接核验节点", "cannot reach the node", "", STOP_ADVICE);
      });
  }

  // The vehicle's verdict cannot be had: its people are checked one by one.
  var STOP_ADVICE = [
    "请逐一扫描车上人员本人的健康码",
    "scan each person's own health code",
  ];

  // PASS: the green lane, with the headcount to count; STOP: every reason, people by seat, and
  // the instruction to scan the people's own codes. Stays longer on STOP, for the reasons.
  function showManifest(v) {
    stopCountdown();
    clearDetails();
    lastCode = null;
    var pass = v.pass === true;
    var reason = splitExplanation(v.explanation);
    var shown = v.shown || {};
    setState(pass ? "pass" : "stop", pass ? "green" : "none");
    setText(el.icon, pass ? "✓" : "✕");
    setText(el.title, pass ? "车辆放行" : "车辆拦停");
    setText(el.titleEn, pass ? "PASS — green lane" : "STOP — check each person");
    setReason(reason[0], reason[1]);
    el.verdict.dataset.reason = pass ? "ok" : String(((v.reasons || [])[0] || {}).reason || "");
    setText(el.issuerLabel, "始发地 origin");
    setText(el.issuer, v.signature_verified && v.origin && v.origin.province ? issuerText(v.origin.province) : "");
    setText(el.checkedAt, shown.checked_at || "");
    window.hcmrVehicle.render(v, formatAge);
    shift.total++;
    if (pass) shift.ok++;
    else shift.no++;
    showCount();
    scheduleReady(pass ? READY_AFTER_MS : TYPING_GRACE_MS);
    refocus();
  }

  el.code.addEventListener("keydown", function (e) {
    if (e.key === "Enter" || (e.key === "Tab" && el.code.value)) {
      e.preventDefault();
      var v = el.code.value;
      el.code.value = "";
      submit(v);
    }
  });

  // A paste is a whole code: check it at once.
  el.code.addEventListener("paste", function () {
    window.setTimeout(function () {
      var v = el.code.value;
      if (SCANNABLE.test(v)) {
        el.code.value = "";
        submit(v);
      }
    }, 0);
  });

  // ---- identity match ----

  el.docNumber.addEventListener("focus", function () {
    if (lastCode) scheduleReady(TYPING_GRACE_MS);
  });
  el.docNumber.addEventListener("input", function () {
    var v = el.docNumber.value;
    // A health code scanned while the number field had the focus: move it to #code.
    if (SCANNABLE.test(v) || v.length > 40) {
      el.docNumber.value = "";
      el.code.value = v;
      el.code.focus();
      return;
    }
    if (lastCode) scheduleReady(TYPING_GRACE_MS);
  });
  el.docNumber.addEventListener("blur", function () {
    window.setTimeout(function () {
      if (typingNumber()) return;
      if (el.verdict.dataset.state === "recognized" && el.matchResult.dataset.result !== "pending") {
        scheduleReady(READY_AFTER_MS);
      }
      refocus();
    }, 0);
  });
  el.docType.addEventListener("change", function () {
    el.docNumber.focus();
  });

  el.match.addEventListener("submit", function (e) {
    e.preventDefault();
    var number = el.docNumber.value;
    if (!session) {
      showLogin("请先登录 / log in first", "error");
      return;
    }
    if (!lastCode || !number.trim()) {
      el.docNumber.focus();
      return;
    }
    var body = {
      code: lastCode,
      document_type: el.docType.value,
      document_number: number,
    };
    // The typed number leaves the field and this script's memory now.
    el.docNumber.value = "";
    number = null;
    var mine = ++matchSeq;
    el.matchBtn.disabled = true;
    el.matchResult.dataset.result = "pending";
    setText(el.matchResult, "核对中… / checking…");
    stopCountdown();
    var req = postJson("/api/identity-match", body, session.token);
    body.document_number = null;
    body = null;
    req
      .then(function (r) {
        if (mine !== matchSeq) return;
        if (r.status === 401) {
          loggedOut(r);
          return;
        }
        if (r.ok && r.body && typeof r.body.matches === "boolean") {
          var by = r.body.checked_by;
          var byText =
            lastIssuer && lastIssuer.code === by ? lastIssuer.name_zh + " " + lastIssuer.name_en : by;
          if (r.body.matches) {
            el.matchResult.dataset.result = "match";
            el.verdict.dataset.match = "match";
            setText(el.icon, "✓");
            setText(el.title, "互认通过");
            setText(el.titleEn, "RECOGNIZED");
            setText(el.matchResult, "✓ 人证一致 MATCH" + (byText ? " · " + byText : ""));
          } else {
            // Not this person's code: the whole panel says so, it no longer looks like a pass.
            el.matchResult.dataset.result = "no-match";
            el.verdict.dataset.match = "no-match";
            setText(el.icon, "✕");
            setText(el.title, "人证不符");
            setText(el.titleEn, "NO MATCH — not the holder's code");
            setText(el.matchResult, "✕ 人证不符 NO MATCH" + (byText ? " · " + byText : ""));
          }
          // The field was at the bottom: back to the top, where the title says what it is.
          window.scrollTo(0, 0);
        } else {
          el.matchResult.dataset.result = "error";
          // After a NO MATCH the panel keeps saying so: no answer is not a pass.
          if (el.verdict.dataset.match !== "no-match") el.verdict.dataset.match = "error";
          setText(el.matchResult, matchRefusal(r));
        }
      })
      .catch(function () {
        if (mine !== matchSeq) return;
        el.matchResult.dataset.result = "error";
        if (el.verdict.dataset.match !== "no-match") el.verdict.dataset.match = "error";
        setText(
          el.matchResult,
          "无法连接核验节点，请人工比对证件号 / cannot reach the node, compare the masked ID by eye"
        );
      })
      .finally(function () {
        if (mine !== matchSeq || !session) return;
        el.docNumber.value = "";
        el.matchBtn.disabled = false;
        if (el.verdict.dataset.state === "recognized") scheduleReady(READY_AFTER_MS);
        el.docNumber.blur();
        refocus();
      });
  });

  // Why the identity match gave no answer, in both languages and with what to do instead (the
  // node's own words are for the operator's log, not the gate).
  function matchRefusal(r) {
    switch (r.status) {
      case 400:
        return "证件号无效，请核对后重新输入 / not a valid document number: check it and type it again";
      case 409:
        return "此码在本地未获互认，无持码人可核对 / the code is not recognized here: there is no holder to check";
      case 429:
        return "本码核对次数已达上限（每小时 5 次），请人工比对证件号 / too many checks of this code (5 an hour): compare the masked ID by eye";
      case 503:
        return "签发地节点无法连接，请人工比对证件号 / the issuing province's node cannot be reached: compare the masked ID by eye";
      default:
        return "无法核对，请人工比对证件号 / cannot check: compare the masked ID by eye (HTTP " + r.status + ")";
    }
  }

  // Escape: back to ready at once.
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape") showReady();
  });

  // ---- shift counter ----

  var confirmTimer = null;
  el.newShift.addEventListener("click", function () {
    if (!el.newShift.classList.contains("confirm")) {
      el.newShift.classList.add("confirm");
      el.newShift.dataset.label = el.newShift.textContent;
      setText(el.newShift, "再按一次清零 / press again to reset");
      confirmTimer = window.setTimeout(resetShiftButton, 3000);
      refocus();
      return;
    }
    shift = { total: 0, ok: 0, no: 0 };
    showCount();
    resetShiftButton();
    showReady();
  });

  function resetShiftButton() {
    if (confirmTimer !== null) window.clearTimeout(confirmTimer);
    confirmTimer = null;
    el.newShift.classList.remove("confirm");
    if (el.newShift.dataset.label) {
      setText(el.newShift, el.newShift.dataset.label);
      delete el.newShift.dataset.label;
    }
  }

  // ---- camera (where the browser offers a camera) ----
  //
  // The decoder is the browser's BarcodeDetector where it reads QR codes (Chrome on Android and
  // macOS, Safari), else jsQR, vendored and served by the node (/vendor/jsqr/, loaded on the
  // first use: desktop Chromium on Linux and Windows, Firefox).

  var JSQR_SRC = "/vendor/jsqr/jsQR.js";
  var JSQR_MAX_WIDTH = 960; // frames are scaled down to this for jsQR (speed; modules stay > 2 px)
  var camera = { stream: null, decoder: null, timer: null, last: "", lastAt: 0 };

  function cameraAvailable() {
    return (
      window.isSecureContext &&
      navigator.mediaDevices &&
      typeof navigator.mediaDevices.getUserMedia === "function"
    );
  }

  if (cameraAvailable()) el.cameraBtn.hidden = false;

  // The browser's own QR reader, or null.
  function nativeDetector() {
    if (typeof window.BarcodeDetector !== "function") return Promise.resolve(null);
    var formats = window.BarcodeDetector.getSupportedFormats
      ? window.BarcodeDetector.getSupportedFormats()
      : Promise.resolve(["qr_code"]);
    return formats
      .then(function (f) {
        return f.indexOf("qr_code") >= 0 ? new window.BarcodeDetector({ formats: ["qr_code"] }) : null;
      })
      .catch(function () {
        return null;
      });
  }

  function loadJsqr() {
    if (typeof window.jsQR === "function") return Promise.resolve();
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = JSQR_SRC;
      s.onload = function () {
        if (typeof window.jsQR === "function") resolve();
        else reject(new Error("jsQR did not load"));
      };
      s.onerror = reject;
      document.head.appendChild(s);
    });
  }

  // {name, detect(video) -> Promise of the strings read}.
  function makeDecoder() {
    return nativeDetector().then(function (d) {
      if (d) {
        return {
          name: "barcode-detector",
          detect: function (video) {
            return d.detect(video).then(function (codes) {
              return codes.map(function (c) {
                return c.rawValue || "";
              });
            });
          },
        };
      }
      return loadJsqr().then(function () {
        var canvas = document.createElement("canvas");
        var ctx = canvas.getContext("2d", { willReadFrequently: true });
        return {
          name: "jsqr",
          detect: function (video) {
            var vw = video.videoWidth;
            var vh = video.videoHeight;
            if (!vw || !vh) return Promise.resolve([]);
            var k = Math.min(1, JSQR_MAX_WIDTH / vw);
            var w = Math.round(vw * k);
            var h = Math.round(vh * k);
            canvas.width = w;
            canvas.height = h;
            ctx.drawImage(video, 0, 0, w, h);
            var found = window.jsQR(ctx.getImageData(0, 0, w, h).data, w, h, {
              inversionAttempts: "attemptBoth",
            });
            return Promise.resolve(found && found.data ? [found.data] : []);
          },
        };
      });
    });
  }

  function stopCamera() {
    if (camera.timer !== null) window.clearTimeout(camera.timer);
    camera.timer = null;
    if (camera.stream) {
      camera.stream.getTracks().forEach(function (t) {
        t.stop();
      });
    }
    camera.stream = null;
    el.video.srcObject = null;
    el.cameraBox.hidden = true;
    el.cameraBtn.classList.remove("on");
    camera.last = "";
  }

  function scanFrame() {
    camera.timer = null;
    if (!camera.stream) return;
    var next = function () {
      if (camera.stream) camera.timer = window.setTimeout(scanFrame, 200);
    };
    if (el.video.readyState < 2) {
      next();
      return;
    }
    camera.decoder
      .detect(el.video)
      .then(function (codes) {
        var now = Date.now();
        for (var i = 0; i < codes.length; i++) {
          var v = codes[i];
          if (!SCANNABLE.test(v)) continue;
          if (v === camera.last && now - camera.lastAt < CAMERA_REPEAT_MS) {
            camera.lastAt = now;
            break;
          }
          camera.last = v;
          camera.lastAt = now;
          submit(v);
          break;
        }
      })
      .catch(function () {})
      .finally(next);
  }

  el.cameraBtn.addEventListener("click", function () {
    if (camera.stream) {
      stopCamera();
      refocus();
      return;
    }
    var decoder = camera.decoder ? Promise.resolve(camera.decoder) : makeDecoder();
    decoder
      .then(function (d) {
        camera.decoder = d;
        el.cameraBox.dataset.decoder = d.name;
        return navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
      })
      .then(function (stream) {
        camera.stream = stream;
        el.video.srcObject = stream;
        el.cameraBox.hidden = false;
        el.cameraBtn.classList.add("on");
        return el.video.play();
      })
      .then(function () {
        scanFrame();
      })
      .catch(function () {
        stopCamera();
        showError("无法打开摄像头", "cannot open the camera", "");
      });
    refocus();
  });

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden" && camera.stream) stopCamera();
  });

  // ---- an image of a QR code (a photo, a screenshot of a windshield card) ----
  //
  // Decoded here with jsQR, like the camera without BarcodeDetector; the image never leaves the
  // browser, only the string read from it is checked.

  var IMAGE_MAX_SIDE = 1600; // larger images are scaled down to this for jsQR

  el.imageFile = $("image-file");
  el.imageFile.addEventListener("change", function () {
    var file = el.imageFile.files && el.imageFile.files[0];
    el.imageFile.value = "";
    refocus();
    if (!file) return;
    if (!session) {
      showLogin("请先登录 / log in first", "error");
      return;
    }
    if (typeof window.createImageBitmap !== "function") {
      showError("此浏览器无法读取图片", "this browser cannot read images", "");
      return;
    }
    Promise.all([loadJsqr(), window.createImageBitmap(file)])
      .then(function (r) {
        var bitmap = r[1];
        var k = Math.min(1, IMAGE_MAX_SIDE / Math.max(bitmap.width, bitmap.height));
        var w = Math.max(1, Math.round(bitmap.width * k));
        var h = Math.max(1, Math.round(bitmap.height * k));
        var canvas = document.createElement("canvas");
        canvas.width = w;
        canvas.height = h;
        var ctx = canvas.getContext("2d", { willReadFrequently: true });
        ctx.fillStyle = "#ffffff";
        ctx.fillRect(0, 0, w, h);
        ctx.drawImage(bitmap, 0, 0, w, h);
        if (bitmap.close) bitmap.close();
        var found = window.jsQR(ctx.getImageData(0, 0, w, h).data, w, h, {
          inversionAttempts: "attemptBoth",
        });
        if (found && SCANNABLE.test(found.data || "")) submit(found.data);
        else showError("图片中未找到健康码或行程清单", "no health code or trip manifest found in the image", "");
      })
      .catch(function () {
        showError("无法读取图片", "cannot read the image", "");
      });
  });

  // ---- login ----

  function setLoginMessage(text, kind) {
    setText(el.loginMessage, text);
    el.loginMessage.dataset.kind = text ? kind || "error" : "none";
  }

  // The login panel instead of the verify form: the token is forgotten, the verdict on screen
  // and any answer still on its way are dropped.
  function showLogin(message, kind) {
    session = null;
    forgetToken();
    loginSeq++;
    seq++;
    matchSeq++;
    stopCamera();
    showReady();
    el.code.value = "";
    el.code.disabled = true;
    el.scanRow.hidden = true;
    el.verdict.hidden = true;
    el.focusWarning.hidden = true;
    el.session.hidden = true;
    setText(el.caller, "");
    el.login.hidden = false;
    el.token.value = "";
    el.loginBtn.disabled = false;
    setLoginMessage(message, kind);
    refocus();
  }

  // Logged in as `caller`: the verify form, ready to scan.
  function showSession(token, caller) {
    session = { token: token, caller: caller };
    storeToken(token);
    loginSeq++;
    el.token.value = "";
    el.loginBtn.disabled = false;
    setLoginMessage("", "none");
    el.login.hidden = true;
    setText(el.caller, caller);
    el.session.hidden = false;
    el.scanRow.hidden = false;
    el.verdict.hidden = false;
    el.code.disabled = false;
    showReady();
  }

  // The node answered 401 to a check: the token is no longer good (removed, or replaced).
  function loggedOut(r) {
    showLogin(
      "登录已失效，请重新登录 / logged out, log in again: " +
        ((r.body && r.body.error) || "HTTP " + r.status),
      "error"
    );
  }

  function refusal(r) {
    var why = (r.body && r.body.error) || "HTTP " + r.status;
    switch (r.status) {
      case 401:
        return "令牌无效 / token refused: " + why;
      case 403:
        return "无核验权限 / not allowed to verify: " + why;
      case 429:
        return "请求过多，请稍后再试 / too many requests, retry shortly: " + why;
      default:
        return "登录失败 / login failed: " + why;
    }
  }

  // A health code scanned into the token field is not a token: its characters are dropped until
  // the scanner's Enter (or a pause), and staff are told to log in first.
  var scanIntoToken = null;
  function endScanIntoToken() {
    if (scanIntoToken !== null) window.clearTimeout(scanIntoToken);
    scanIntoToken = null;
  }
  el.token.addEventListener("input", function () {
    if (scanIntoToken !== null || SCANNABLE.test(el.token.value)) {
      el.token.value = "";
      endScanIntoToken();
      scanIntoToken = window.setTimeout(endScanIntoToken, 300);
      setLoginMessage("请先登录再扫码 / log in before scanning", "error");
    }
  });
  el.token.addEventListener("keydown", function (e) {
    if (scanIntoToken !== null && (e.key === "Enter" || e.key === "Tab")) {
      e.preventDefault();
      el.token.value = "";
      endScanIntoToken();
    }
  });

  el.loginForm.addEventListener("submit", function (e) {
    e.preventDefault();
    if (session) return;
    var token = el.token.value.trim();
    if (/^bearer\s+/i.test(token)) token = token.replace(/^bearer\s+/i, "");
    if (!token) {
      setLoginMessage("请输入令牌 / enter the token", "error");
      el.token.focus();
      return;
    }
    if (!/^[\x21-\x7e]+$/.test(token)) {
      el.token.value = "";
      setLoginMessage("这不是令牌 / this is not an API token", "error");
      el.token.focus();
      return;
    }
    var mine = ++loginSeq;
    el.loginBtn.disabled = true;
    setLoginMessage("登录中… / logging in…", "pending");
    postJson("/api/login", {}, token)
      .then(function (r) {
        if (mine !== loginSeq) return;
        if (r.ok && r.body && typeof r.body.caller === "string") {
          showSession(token, r.body.caller);
        } else {
          el.token.value = "";
          setLoginMessage(refusal(r), "error");
        }
      })
      .catch(function () {
        if (mine !== loginSeq) return;
        setLoginMessage("无法连接核验节点 / cannot reach the node", "error");
      })
      .finally(function () {
        token = null;
        if (mine !== loginSeq) return;
        el.loginBtn.disabled = false;
        el.token.focus();
      });
  });

  // The token kept from before a reload: the node still takes it? (Unreachable: keep it, the
  // next check says so.)
  function checkSavedToken(token) {
    var mine = loginSeq;
    postJson("/api/login", {}, token)
      .then(function (r) {
        if (mine !== loginSeq || !session || session.token !== token) return;
        if (r.ok && r.body && typeof r.body.caller === "string") {
          session.caller = r.body.caller;
          setText(el.caller, r.body.caller);
        } else if (r.status === 401 || r.status === 403) {
          showLogin(refusal(r), "error");
        }
      })
      .catch(function () {});
  }

  el.logout.addEventListener("click", function () {
    showLogin("已退出 / logged out", "pending");
  });

  // ---- start ----

  fetch("/api/info", { cache: "no-store", credentials: "omit" })
    .then(function (r) {
      return r.json();
    })
    .then(function (i) {
      if (i && i.name_zh) {
        setText(el.nodeProvince, i.name_zh + " " + i.name_en);
        document.title = i.name_zh + "核验 · " + i.name_en + " check — " + checkpoint;
      }
    })
    .catch(function () {});

  showCount();
  var saved = storedToken();
  if (saved) {
    // A reload of a logged-in tab: the verify form at once, the token checked again meanwhile.
    showSession(saved, "…");
    checkSavedToken(saved);
  } else {
    showLogin("", "none");
  }
})();
