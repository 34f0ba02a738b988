// The message GET / answers with. Tests edit this file to see a new version.
export const message = 'hello from esm-api';
