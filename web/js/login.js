// The login page: posts the credentials to /api/login (which sets the SID cookie) and
// goes back to the UI. Skipped when the node needs no login or the session is live.

const form = document.getElementById('login');
const error = document.getElementById('login-error');

function showError(text) {
  error.textContent = text;
  error.hidden = false;
}

async function check() {
  try {
    const res = await fetch('/api/session', { credentials: 'same-origin' });
    const s = await res.json();
    if (!s.required || s.user) location.replace('/');
  } catch {
    // Stay on the page; the submit reports what is wrong.
  }
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  error.hidden = true;
  const button = form.querySelector('button[type="submit"]');
  button.disabled = true;
  try {
    const res = await fetch('/api/login', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ username: form.username.value, password: form.password.value }),
    });
    if (res.ok) {
      location.replace('/');
      return;
    }
    let msg = `Login failed (${res.status})`;
    if (res.status === 401) msg = 'Wrong user name or password.';
    else {
      try {
        msg = (await res.json()).error || msg;
      } catch {
        // keep the generic message
      }
    }
    showError(msg);
    form.password.select();
  } catch {
    showError('Cannot reach the Shoal node. Is it still running?');
  } finally {
    button.disabled = false;
  }
});

check();
