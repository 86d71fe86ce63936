// ui — small pieces every view uses: notices, a poller that never overlaps
// itself, the password dialog and the confirmation dialog, the CSV export.

import { download } from './api.js';
import { esc } from './fmt.js';

const toasts = () => document.getElementById('toasts');

// A notice that stays a few seconds. kind: 'ok' | 'error'. Errors are
// announced assertively and stay longer.
export function notify(message, kind = 'ok') {
	const box = toasts();
	const el = document.createElement('div');
	el.className = `toast toast-${kind}`;
	el.setAttribute('role', kind === 'error' ? 'alert' : 'status');
	el.textContent = message;
	const close = document.createElement('button');
	close.type = 'button';
	close.className = 'toast-close';
	close.setAttribute('aria-label', 'Dismiss');
	close.textContent = '×';
	close.addEventListener('click', () => el.remove());
	el.append(close);
	box.append(el);
	setTimeout(() => el.remove(), kind === 'error' ? 12000 : 5000);
}

// An "Export CSV" button: downloads path (docs/api.md, CSV) and says
// which file was saved, or why nothing was.
export async function exportCsv(button, path) {
	button.disabled = true;
	try {
		notify(`Saved ${await download(path)}`);
	} catch (e) {
		notify(`Export refused: ${e.message}`, 'error');
	} finally {
		button.disabled = false;
	}
}

// Calls fn now and then every `ms` after each call has finished; stop()
// ends it. A failing call is reported to onError and the polling goes on.
export function poller(fn, ms, onError) {
	let timer = null, stopped = false, running = false, again = false;
	const run = async () => {
		timer = null;
		running = true;
		try {
			await fn();
		} catch (e) {
			if (onError && !stopped)
				onError(e);
		}
		running = false;
		if (stopped)
			return;
		if (again) {
			again = false;
			run();
		} else {
			timer = setTimeout(run, ms);
		}
	};
	run();
	return {
		stop() {
			stopped = true;
			if (timer)
				clearTimeout(timer);
		},
		// Runs again now, or right after the call in flight.
		now() {
			if (running) {
				again = true;
			} else if (timer) {
				clearTimeout(timer);
				run();
			}
		},
	};
}

// The unlock password dialog. save(pass) returns a promise; the dialog
// shows its failure and stays open, or closes on success.
export function askPassword(mac, hasPass, save) {
	const dlg = document.getElementById('pass-dialog');
	const form = dlg.querySelector('form');
	const input = dlg.querySelector('input[name=pass]');
	const err = dlg.querySelector('.form-error');
	dlg.querySelector('.dlg-miner').textContent = mac;
	dlg.querySelector('.dlg-state').textContent = hasPass
		? 'A password is stored for this miner; saving replaces it.'
		: 'No password is stored for this miner; the fleet default is used.';
	input.value = '';
	err.textContent = '';
	const submit = form.querySelector('button[type=submit]');
	form.onsubmit = async (e) => {
		e.preventDefault();
		if (!input.value) {
			err.textContent = 'Type the miner\'s web password.';
			input.focus();
			return;
		}
		submit.disabled = true;
		err.textContent = '';
		try {
			await save(input.value);
			dlg.close();
		} catch (e2) {
			err.textContent = `Not saved: ${e2.message}`;
		} finally {
			submit.disabled = false;
			input.value = '';
		}
	};
	dlg.querySelector('.dlg-cancel').onclick = () => dlg.close();
	dlg.showModal();
	input.focus();
}

// Asks before a change that cannot be taken back (a reboot, an action on
// every miner a filter matches). Resolves true when confirmed; Cancel and
// Escape resolve false. Cancel has the focus.
export function confirmAction(title, text, ok) {
	const dlg = document.getElementById('confirm-dialog');
	dlg.querySelector('#confirm-title').textContent = title;
	dlg.querySelector('#confirm-text').textContent = text;
	const okBtn = dlg.querySelector('.dlg-ok');
	okBtn.textContent = ok;
	return new Promise((resolve) => {
		let answer = false;
		dlg.querySelector('form').onsubmit = (e) => {
			e.preventDefault();
			answer = true;
			dlg.close();
		};
		dlg.querySelector('.dlg-cancel').onclick = () => dlg.close();
		dlg.addEventListener('close', () => resolve(answer), { once: true });
		dlg.showModal();
		dlg.querySelector('.dlg-cancel').focus();
	});
}

export function html(strings, ...vals) {
	return strings.reduce((acc, s, i) => acc + s + (i < vals.length ? vals[i] : ''), '');
}

export function emptyRow(cols, text) {
	return `<tr class="empty"><td colspan="${cols}">${esc(text)}</td></tr>`;
}
