'use strict';

const products = [
  { id: 1, name: 'kettle', price: 29.9 },
  { id: 2, name: 'teapot', price: 19.5 },
  { id: 3, name: 'mug', price: 7.25 },
];

function list() {
  return products;
}

function find(id) {
  return products.find((p) => p.id === id);
}

module.exports = { list, find };
