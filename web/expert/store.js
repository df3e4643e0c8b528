// This browser's own state in IndexedDB: the device key's seed, the
// account it is signed in to, and the contact keys pinned here. IndexedDB
// belongs to this origin only.

const dbName = 'assist';
const storeName = 'kv';

function open() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(dbName, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(storeName);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function run(mode, fn) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(storeName, mode);
      const req = fn(tx.objectStore(storeName));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

export function get(key) {
  return run('readonly', (s) => s.get(key));
}

export function put(key, value) {
  return run('readwrite', (s) => s.put(value, key));
}

export function del(key) {
  return run('readwrite', (s) => s.delete(key));
}
