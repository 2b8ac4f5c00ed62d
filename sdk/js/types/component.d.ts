import type { PolicyExport } from './contract.js';
import type { PolicyRules } from './index.js';

/** The contract's `policy` export for `rules` (only inside a component). */
export function exportPolicy(rules: Pick<PolicyRules, 'handle' | 'query' | 'describe' | 'usageMatters' | 'estimate' | 'minutesFor'>): PolicyExport;
