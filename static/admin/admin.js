// Small progressive enhancements of the web admin; every page works without them.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // live preview of an answer as the Bitrix24 chat shows it; the server escapes
  // the text and renders only the allowed BB-code tags
  function setupPreview() {
    var source = document.querySelector("[data-preview-source]");
    var target = document.querySelector("[data-preview-target]");
    if (!source || !target) return;
    var length = document.querySelector("[data-preview-length]");
    var question = document.querySelector("#question");
    var questionBubble = document.querySelector("[data-preview-question]");
    var timer = null;
    var sent = 0;

    function refresh() {
      var body = new FormData();
      body.append("answer", source.value);
      var ticket = ++sent;
      fetch(source.getAttribute("data-preview-source"), {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken() }
      })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (!data || ticket !== sent) return;
          target.innerHTML = data.html;
          if (length) {
            length.textContent = data.length;
            length.parentNode.classList.toggle("error", data.length > data.limit);
          }
        })
        .catch(function () {});
    }

    source.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 250);
    });
    if (question && questionBubble) {
      question.addEventListener("input", function () {
        questionBubble.textContent = question.value || "Вопрос сотрудника";
      });
    }
  }

  // the "new category" box is needed only when that option is picked
  function setupCategory() {
    var select = document.querySelector("[data-new-category-select]");
    var box = document.querySelector(".new-category");
    if (!select || !box) return;
    function sync() {
      box.hidden = select.value !== "__new__";
    }
    select.addEventListener("change", sync);
    sync();
  }

  function setupConfirm() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
  }

  function setupBack() {
    document.querySelectorAll("[data-back]").forEach(function (button) {
      if (window.history.length < 2) return;
      button.hidden = false;
      button.addEventListener("click", function () { window.history.back(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupPreview();
    setupCategory();
    setupConfirm();
    setupBack();
  });
})();
