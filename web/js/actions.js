// actions — the changes a user can make, each confirming or explaining.

import { ApiError, modelPath, mpath, patch, post } from './api.js';
import { actionText } from './fmt.js';
import { notify } from './ui.js';

export function reason(e) {
	if (e instanceof ApiError && e.kind === 'network')
		return `the API cannot be reached (${e.message})`;
	return e.message;
}

// Returns the miner as the API now shows it; throws after telling the user.
export async function setManaged(mac, managed) {
	try {
		const m = await patch(mpath(mac), { managed });
		if (m && typeof m.managed === 'boolean' && m.managed !== managed)
			throw new Error('the change did not hold');
		notify(`${mac} is ${managed ? 'now managed' : 'no longer managed'}.`);
		return m;
	} catch (e) {
		notify(`Could not ${managed ? 'manage' : 'unmanage'} ${mac}: ${reason(e)}`, 'error');
		throw e;
	}
}

// The password dialog shows the error itself.
export async function setUnlockPass(mac, pass) {
	try {
		const m = await patch(mpath(mac), { unlock_pass: pass });
		notify(`Unlock password saved for ${mac}.`);
		return m;
	} catch (e) {
		throw new Error(reason(e));
	}
}

export async function setMaxPreset(alias, preset) {
	try {
		const m = await patch(modelPath(alias), { max_preset: preset });
		notify(preset === null ? `${alias}: no preset limit.`
			: `${alias}: presets limited to ${preset} and below.`);
		return m;
	} catch (e) {
		notify(`Could not set the max preset of ${alias}: ${reason(e)}`, 'error');
		throw e;
	}
}

// One action on one miner (POST /api/miners/{id}/actions): action is
// set_preset (with preset), restart, pause, resume or reboot. Returns the
// recorded action; a refusal is told in the API's words and thrown.
export async function minerAction(mac, action, preset) {
	const what = actionText(action, preset);
	try {
		const r = await post(mpath(mac) + '/actions',
			action === 'set_preset' ? { action, preset } : { action });
		notify(`${what}: queued for ${mac}.`);
		return r.action;
	} catch (e) {
		notify(`${what} refused for ${mac}: ${reason(e)}`, 'error');
		throw e;
	}
}

// One action on many miners (POST /api/actions): target is {miners: [ids]}
// or {filter: {...}} (the miner list's filters). Returns {actions, refused};
// a refusal of the whole request is told and thrown.
export async function bulkAction(target, action, preset) {
	const what = actionText(action, preset);
	try {
		return await post('/api/actions',
			action === 'set_preset' ? { ...target, action, preset } : { ...target, action });
	} catch (e) {
		notify(`${what} refused: ${reason(e)}`, 'error');
		throw e;
	}
}

// Pinned: the power balancer leaves the miner's preset alone.
export async function setPinned(mac, pinned) {
	try {
		const m = await patch(mpath(mac), { pinned });
		notify(pinned ? `${mac} is pinned: the power balancer leaves its preset alone.`
			: `${mac} is no longer pinned: the power balancer may change its preset.`);
		return m;
	} catch (e) {
		notify(`Could not ${pinned ? 'pin' : 'unpin'} ${mac}: ${reason(e)}`, 'error');
		throw e;
	}
}

// Takes a miner that missed its commanded preset back into the power plan.
export async function clearPowerExcluded(mac) {
	try {
		const m = await patch(mpath(mac), { power_excluded: false });
		notify(`${mac} is back in the power plan.`);
		return m;
	} catch (e) {
		notify(`Could not take ${mac} back into the power plan: ${reason(e)}`, 'error');
		throw e;
	}
}

// PATCH /api/power: body is any of mode, margin_pct, budget_w, fallback;
// what says it in words ("mode dry run"). Returns the balancer as the API
// now shows it; a refusal (400, 409) is told in the API's words and thrown.
export async function setPower(body, what) {
	try {
		const p = await patch('/api/power', body);
		notify(`Power: ${what}.`);
		return p;
	} catch (e) {
		notify(`Power: ${what} refused: ${reason(e)}`, 'error');
		throw e;
	}
}
