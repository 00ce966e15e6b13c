/** Sparse in-memory storage ({@code memory:} locations), for embedding and tests. */
module imago.storage.memory {
    // MemoryStorage implements imago.api.spi.Storage: the API's types appear in our signatures
    requires transitive imago.api;

    exports imago.storage.memory;

    provides imago.api.spi.StorageProvider with imago.storage.memory.MemoryStorageProvider;
}
