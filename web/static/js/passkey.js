// dgov passkeys (WebAuthn): registration on /account/strong, sign-in on /login/strong.
// The server keeps the ceremony; this file only converts between JSON (base64url) and the
// ArrayBuffers navigator.credentials wants. No inline script: the page's #passkey-box carries
// the CSRF token and parameters in data- attributes.
(function () {
  "use strict";
  var box = document.getElementById("passkey-box");
  if (!box) return;
  var errBox = document.getElementById("passkey-error");

  function b64urlToBuf(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function bufToB64url(buf) {
    if (!buf) return undefined;
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function showError(msg) {
    if (!errBox) { window.alert(msg); return; }
    errBox.textContent = msg;
    errBox.hidden = false;
  }
  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": box.getAttribute("data-csrf") },
      body: JSON.stringify(body)
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (j) {
        if (!res.ok) throw new Error(j.title || j.detail || ("HTTP " + res.status));
        return j;
      });
    });
  }
  function creationOptions(o) {
    var pk = o.publicKey;
    pk.challenge = b64urlToBuf(pk.challenge);
    pk.user.id = b64urlToBuf(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id); });
    return { publicKey: pk };
  }
  function requestOptions(o) {
    var pk = o.publicKey;
    pk.challenge = b64urlToBuf(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id); });
    return { publicKey: pk };
  }
  function credentialJSON(cred) {
    var r = cred.response, out = {
      id: cred.id, rawId: bufToB64url(cred.rawId), type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: { clientDataJSON: bufToB64url(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = bufToB64url(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = bufToB64url(r.authenticatorData);
      out.response.signature = bufToB64url(r.signature);
      if (r.userHandle) out.response.userHandle = bufToB64url(r.userHandle);
    }
    return out;
  }
  function unsupported() {
    if (!window.PublicKeyCredential || !navigator.credentials) {
      showError(document.documentElement.lang === "en" ? "This browser does not support passkeys." : "此浏览器不支持通行密钥。");
      return true;
    }
    return false;
  }

  var reg = document.getElementById("passkey-register");
  if (reg) reg.addEventListener("click", function () {
    if (unsupported()) return;
    reg.disabled = true;
    var nameEl = document.getElementById("passkey-name");
    post("/account/passkeys/register/begin", {}).then(function (c) {
      return navigator.credentials.create(creationOptions(c.options)).then(function (cred) {
        return post("/account/passkeys/register/finish", { ceremony: c.ceremony, name: nameEl ? nameEl.value : "", credential: credentialJSON(cred) });
      });
    }).then(function (res) {
      window.location.assign(res.redirect || "/account/strong");
    }).catch(function (e) {
      reg.disabled = false;
      showError(e.message || String(e));
    });
  });

  var login = document.getElementById("passkey-login");
  if (login) login.addEventListener("click", function () {
    if (unsupported()) return;
    login.disabled = true;
    var mobileEl = document.getElementById("passkey-mobile");
    post("/login/passkey/begin", { mobile: mobileEl ? mobileEl.value : "" }).then(function (c) {
      return navigator.credentials.get(requestOptions(c.options)).then(function (cred) {
        return post("/login/passkey/finish", {
          ceremony: c.ceremony, credential: credentialJSON(cred),
          authRequestID: box.getAttribute("data-auth-request-id") || "", next: box.getAttribute("data-next") || ""
        });
      });
    }).then(function (res) {
      window.location.assign(res.redirect || "/account");
    }).catch(function (e) {
      login.disabled = false;
      showError(e.message || String(e));
    });
  });
})();
