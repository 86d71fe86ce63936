// actions — the changes a user can make, each confirming or explaining.

import { ApiError, modelPath, mpath, patch } from './api.js';
import { notify } from './ui.js';

function reason(e) {
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
