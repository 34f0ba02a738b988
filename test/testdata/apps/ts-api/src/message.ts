// The message GET / answers with. Tests edit this file to see a new version.
export const message: string = 'hello from ts-api';
