// What a contract suite needs from an implementation's test file: a way to get a fresh,
// empty store per test and to release it afterwards.

export interface StoreUnderTest<S> {
  store: S;
  cleanup(): Promise<void>;
}

export type StoreFactory<S> = () => Promise<StoreUnderTest<S>>;

/**
 * Registers hooks (call inside a describe) that give each test its own store from `factory`;
 * returns the accessor for the current test's store.
 */
export function storePerTest<S>(factory: StoreFactory<S>): () => S {
  let current: StoreUnderTest<S> | undefined;
  beforeEach(async () => {
    current = await factory();
  });
  afterEach(async () => {
    await current?.cleanup();
    current = undefined;
  });
  return () => {
    if (!current) throw new Error("the store exists only while a test runs");
    return current.store;
  };
}
