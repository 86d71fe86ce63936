// api — the dashboard's only way to the server: every call carries the
// bearer token, every failure becomes an ApiError whose message can be shown
// as it is, and the connection state (reachable or not, token refused) is
// reported to whoever listens.

const TOKEN_KEY = 'powerhive.token';
const TIMEOUT_MS = 10000;

export class ApiError extends Error {
	constructor(message, status, kind) {
		super(message);
		this.status = status;    // HTTP status, 0 when no answer came
		this.kind = kind;        // 'network' | 'auth' | 'http' | 'format'
	}
}

const listeners = new Set();
const conn = { reachable: true, lastOk: 0, lastError: '' };

export function onConnection(fn) {
	listeners.add(fn);
}

function report(ok, message) {
	const changed = ok !== conn.reachable || (!ok && message !== conn.lastError);
	conn.reachable = ok;
	if (ok)
		conn.lastOk = Date.now();
	conn.lastError = ok ? '' : message;
	if (changed)
		for (const fn of listeners)
			fn({ ...conn });
}

export function connection() {
	return { ...conn };
}

export function token() {
	try {
		return sessionStorage.getItem(TOKEN_KEY) || '';
	} catch {
		return '';
	}
}

export function setToken(t) {
	if (t)
		sessionStorage.setItem(TOKEN_KEY, t);
	else
		sessionStorage.removeItem(TOKEN_KEY);
}

let authFailed = () => {};
export function onAuthFailed(fn) {
	authFailed = fn;
}

export function query(params) {
	const q = new URLSearchParams();
	for (const [k, v] of Object.entries(params))
		if (v !== undefined && v !== null && v !== '')
			q.set(k, String(v));
	const s = q.toString();
	return s ? '?' + s : '';
}

// One request, with the checks every request shares: the token, the
// timeout, 502/503/504 as "unreachable", 401, and any other error in the
// API's own words (its answers to errors are JSON whatever was asked).
// Returns the response and its text.
async function send(method, path, body, tok, accept) {
	const headers = { 'Accept': accept };
	const t = tok ?? token();
	if (t)
		headers['Authorization'] = 'Bearer ' + t;
	if (body !== undefined)
		headers['Content-Type'] = 'application/json';
	const ctl = new AbortController();
	const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
	let res;
	try {
		res = await fetch(path, {
			method, headers, signal: ctl.signal, cache: 'no-store',
			body: body === undefined ? undefined : JSON.stringify(body),
		});
	} catch (e) {
		const msg = e.name === 'AbortError'
			? `no answer within ${TIMEOUT_MS / 1000} s`
			: 'network error';
		report(false, msg);
		throw new ApiError(msg, 0, 'network');
	} finally {
		clearTimeout(timer);
	}
	const text = await res.text().catch(() => '');
	let data = null;
	if (text && !res.ok) {
		try {
			data = JSON.parse(text);
		} catch {
			data = null;
		}
	}
	// A proxy or a dying server answers 502/503/504: the API is not there.
	if (res.status === 502 || res.status === 503 || res.status === 504) {
		const msg = (data && data.error) || `HTTP ${res.status} ${res.statusText}`;
		report(false, msg);
		throw new ApiError(msg, res.status, 'network');
	}
	report(true);
	if (res.status === 401) {
		const msg = (data && data.error) || 'the API refused the token';
		if (tok === undefined)
			authFailed(msg);
		throw new ApiError(msg, 401, 'auth');
	}
	if (!res.ok) {
		const msg = (data && data.error) || `${method} ${path}: ${res.status} ${res.statusText}`;
		throw new ApiError(msg, res.status, 'http');
	}
	return { res, text };
}

// One request. body: an object sent as JSON. tok: a token to try instead of
// the stored one (the login form). Returns the parsed JSON answer.
export async function request(method, path, body, tok) {
	const { res, text } = await send(method, path, body, tok, 'application/json');
	let data = null;
	if (text) {
		try {
			data = JSON.parse(text);
		} catch {
			throw new ApiError(`${method} ${path}: the answer is not JSON`, res.status, 'format');
		}
	}
	return data;
}

// A CSV export: GET path as text/csv, saved by the browser under the name
// the API gives (Content-Disposition). A plain link cannot carry the
// token, so the file is fetched and handed over as a blob. Returns the
// file's name.
export async function download(path) {
	const { res, text } = await send('GET', path, undefined, undefined, 'text/csv');
	const m = /filename="([^"]+)"/.exec(res.headers.get('Content-Disposition') || '');
	const name = m ? m[1] : 'powerhive.csv';
	const url = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
	const a = document.createElement('a');
	a.href = url;
	a.download = name;
	a.hidden = true;
	document.body.append(a);
	a.click();
	a.remove();
	setTimeout(() => URL.revokeObjectURL(url), 60000);
	return name;
}

export const get = (path, tok) => request('GET', path, undefined, tok);
export const patch = (path, body) => request('PATCH', path, body);
export const post = (path, body) => request('POST', path, body);

export const mpath = (id) => '/api/miners/' + encodeURIComponent(id);
export const modelPath = (alias) => '/api/models/' + encodeURIComponent(alias);
