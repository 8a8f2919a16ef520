export * from './states.js';
export * from './topics.js';
export * from './messages.js';
export * from './channels.js';
export * from './codec.js';
export * from './health.js';
