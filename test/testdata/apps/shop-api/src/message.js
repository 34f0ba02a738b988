// The message GET / answers with. Tests edit this file to see a new version.
module.exports = 'hello from shop-api';
