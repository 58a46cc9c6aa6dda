// Plugin versions: keep equal to projdeploy/sdk/versions.json (tests/test_sdk.py checks).
plugins {
    id("com.android.application") version "8.9.2" apply false
    id("com.android.library") version "8.9.2" apply false
    id("org.jetbrains.kotlin.android") version "2.1.21" apply false
}
