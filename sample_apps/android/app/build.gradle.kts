plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "ai.projdeploy.sample"
    compileSdk = 35
    defaultConfig {
        applicationId = "ai.projdeploy.sample"
        minSdk = 26
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        ndk { abiFilters += listOf("arm64-v8a", "x86_64") }
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
}

dependencies {
    implementation(project(":digits_cls"))
    implementation(project(":pycode"))
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.8.0") // MainScope's Dispatchers.Main
}
