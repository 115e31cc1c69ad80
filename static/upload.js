// Artwork forms on the job page: drag and drop, the chosen files listed and checked
// before they go (type and size, as the server checks them again), and a progress bar
// while they are sent. Without this script the same forms post as plain file inputs.
"use strict";
(function () {
  function sizeText(n) {
    if (n >= 1048576) return (n / 1048576).toFixed(1).replace(/\.0$/, "") + " MB";
    if (n >= 1024) return Math.floor(n / 1024) + " KB";
    return n + " bytes";
  }

  function enhance(form) {
    var input = form.querySelector("input[type=file]");
    var zone = form.querySelector(".drop");
    var list = form.querySelector(".chosen");
    var problems = form.querySelector(".problems");
    var progress = form.querySelector("progress");
    var button = form.querySelector("button[type=submit]");
    var maxBytes = Number(form.dataset.maxBytes);
    var maxFiles = Number(form.dataset.maxFiles);
    var types = form.dataset.types.toLowerCase().split(",");

    // Why a file would be refused, or "" when it may go.
    function refusal(f) {
      var dot = f.name.lastIndexOf(".");
      var ext = dot < 0 ? "" : f.name.slice(dot + 1).toLowerCase();
      if (types.indexOf(ext) < 0) return f.name + ": ." + ext + " files are not accepted (" + types.join(", ") + ")";
      if (f.size > maxBytes) return f.name + ": larger than " + form.dataset.maxText + ", the most one file may be";
      return "";
    }

    function show() {
      list.textContent = "";
      var why = [];
      Array.prototype.forEach.call(input.files, function (f) {
        var li = document.createElement("li");
        var r = refusal(f);
        li.textContent = f.name + " (" + sizeText(f.size) + ")" + (r ? ": will not be sent" : "");
        if (r) { li.className = "refused"; why.push(r); }
        list.appendChild(li);
      });
      if (input.files.length > maxFiles) why.push("at most " + maxFiles + " files at once");
      problems.textContent = why.join("; ");
    }

    input.addEventListener("change", show);
    ["dragenter", "dragover"].forEach(function (t) {
      zone.addEventListener(t, function (e) { e.preventDefault(); zone.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (t) {
      zone.addEventListener(t, function () { zone.classList.remove("over"); });
    });
    zone.addEventListener("drop", function (e) {
      e.preventDefault();
      if (e.dataTransfer && e.dataTransfer.files.length) {
        input.files = e.dataTransfer.files;
        show();
      }
    });

    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var data = new FormData(form);
      data.delete("files");
      var sending = 0;
      Array.prototype.forEach.call(input.files, function (f) {
        if (!refusal(f)) { data.append("files", f, f.name); sending++; }
      });
      if (sending === 0 || input.files.length > maxFiles) {
        show();
        problems.textContent = "Nothing was sent" + (problems.textContent ? ": " + problems.textContent : ": choose at least one file") + ".";
        return;
      }
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.upload.addEventListener("progress", function (p) {
        if (p.lengthComputable) progress.value = Math.round((p.loaded / p.total) * 100);
      });
      xhr.addEventListener("load", function () {
        // The server answers with the job page (after a redirect) and its note.
        window.location.assign(xhr.responseURL || form.action.replace(/\/artwork$/, ""));
      });
      xhr.addEventListener("error", function () {
        progress.hidden = true;
        button.disabled = false;
        problems.textContent = "The files could not be sent: check the connection and try again.";
      });
      progress.hidden = false;
      progress.value = 0;
      button.disabled = true;
      xhr.send(data);
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("form.upload"), enhance);
})();
